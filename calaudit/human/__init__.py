"""Calibration against how people disagree: annotator votes and soft labels.

``votes`` validates what annotators said; ``metrics`` compares the model's
probabilities with the human distribution; ``intervals`` resamples rows (and votes);
``split`` separates the items people disagree on; ``analysis`` puts them together
into :class:`calaudit.human.results.HumanAnalysis`.
"""
