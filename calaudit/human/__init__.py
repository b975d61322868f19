"""Calibration against how people disagree: annotator votes and soft labels.

What annotators said is validated on the input side
(:mod:`calaudit.predictions.human_labels`); here ``metrics`` compares the model's
probabilities with the human distribution; ``intervals`` resamples rows (and votes);
``split`` separates the items people disagree on; ``analysis`` puts them together
into :class:`calaudit.human.results.HumanAnalysis`.
"""
