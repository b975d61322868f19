"""The statistics: every metric defined once, and how sure each figure is.

``metric_info`` lists the metrics (name, direction, meaning, range: what reporters and
the gate read); ``metrics`` computes the binned metrics and the whole suite, over the
bins of ``binning``; ``estimators`` and ``estimates`` add the unbinned and debiased
estimators and the calibration tests; ``metric_functions`` gives each metric a function
of its own; ``bootstrap`` (with ``grouped_bootstrap`` above its exact budget) and
``intervals`` give every figure its interval; ``reliability`` builds the reliability
table; ``verdict`` says in one word how far the confidence can be trusted; ``limits``
bounds the options.
"""
