"""Vendor decisions: compare models, find where confidence fails, route to review.

* :mod:`.compare` - several models on the same rows, paired bootstrap differences;
* :mod:`.segments` - per-segment calibration, tests corrected for multiplicity;
* :mod:`.routing` - review thresholds with a statistical guarantee;
* :mod:`.comparison_result` - the plain data of a comparison; segments and routing
  fill in parts of :class:`calaudit.result.AuditResult`.

Each is fed by :class:`calaudit.predictions.Predictions`, like the audit itself.
"""
