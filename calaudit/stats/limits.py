"""Bounds on option values, kept free of numpy so the CLI can check them while it parses.

Each bound keeps memory and time at the scale of the data whatever the option says
(docs/prediction-files.md, "Options of calaudit run"); a value beyond one is a usage error (exit 2).
"""

from __future__ import annotations

#: Largest number of bins. Finer bins hold a handful of rows each and measure noise, and
#: the classwise statistics cost K x bins.
MAX_BINS = 1000
#: Fewest bootstrap resamples of a meaningful 95% interval: with fewer, the 2.5% and
#: 97.5% points rest on four or five resamples each (0 still means no intervals).
MIN_RESAMPLES = 200
#: Most bootstrap resamples: 1,000 give a 95% interval; 100,000 place its ends to a
#: thousandth of their spread. Memory stays bounded (resamples are drawn in blocks),
#: time grows with the count.
MAX_RESAMPLES = 100_000
#: Largest seed. numpy's ``default_rng`` takes any non-negative integer, but the seed
#: also reaches scikit-learn (``random_state`` of the baselines' folds and models),
#: which takes 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1
