"""Vendor decisions: compare models, find where confidence fails, route to review.

* :mod:`.compare` - several models on the same rows, paired bootstrap differences;
* :mod:`.segments` - per-segment calibration, tests corrected for multiplicity;
* :mod:`.routing` - review thresholds with a statistical guarantee;
* :mod:`.results` - their plain-data results, which reporters read.

Each is fed by :class:`calaudit.predictions.Predictions`, like the audit itself.
"""
