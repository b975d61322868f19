"""Baselines: what calibration a team could reach itself, on the same rows.

* :mod:`.recalibration`: post-hoc fixes of the vendor's own scores (temperature
  scaling, vector scaling, isotonic regression, histogram binning);
* :mod:`.label_smoothing`: a reference model retrained on the same features with hard
  and with smoothed labels (:mod:`.softmax_regression`: its logistic fit on the
  targets directly);
* :mod:`.comparison`: runs them cross-fitted on the same stratified folds, so no row
  is scored by a model that saw it, and measures them with the vendor's metrics.
"""
