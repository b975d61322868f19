"""How often the paired intervals of ``calaudit compare`` cover the true difference of
two models: the simulation behind docs/metrics.md, section 10 ("Which interval for a
difference"). Not a test module; tests/test_compare_intervals.py runs it small.

The pair is shaped like two fine-tuned text classifiers scored on the same 1,514
items (3 classes, about 75% accurate, most calls 90-100% sure, a thin spread of
unsure calls), their confidences driven by the same draw (the same hard items):

* model A says ``c_A``: uniform on [0.35, 1) for a share ``unsure`` of the items (0.2,
  or 0.04: a few unsure calls in sparse bins, where MCE lives), else
  ``0.35 + 0.65 * Beta(8, 1)``; it is right with probability ``acc_A(c) = 1.05 c - 0.16``;
* model B says ``c_B = c_A + N(0, 0.05)``, kept in [0.35, 0.999], and is right with
  probability ``acc_B(c) = c - 0.10`` (the same uniform decides both, so their
  mistakes fall on the same items);
* ``curves`` changes the two laws ``(slope, offset)``: ``((1, 0), (1, 0))`` makes both
  models perfectly calibrated.

Population values come from the laws, not from drawn outcomes: in each bin the gap
is the mean of ``c - acc(c)`` over 2,000,000 draws of the confidences, so the
population MCE (the largest gap of a bin) carries no sampling noise of its own.
``python tests/compare_coverage.py [REPETITIONS]`` prints the table the docs quote.
"""

from __future__ import annotations

import sys

import numpy as np

N_BINS = 15
N_ITEMS = 1514
POPULATION_DRAWS = 2_000_000
DEFAULT_CURVES = ((1.05, -0.16), (1.0, -0.10))
#: Share of items whose confidence is spread evenly over [0.35, 1) (the unsure calls).
UNSURE = 0.2
METRICS = ("ece", "mce")


def confidences(n: int, rng: np.random.Generator, unsure: float = UNSURE) -> tuple[np.ndarray, np.ndarray]:
    """Both models' top confidences for ``n`` items."""
    sure = 0.35 + 0.65 * rng.beta(8.0, 1.0, n)
    spread = rng.uniform(0.35, 1.0, n)
    c_a = np.where(rng.random(n) < unsure, spread, sure)
    c_b = np.clip(c_a + rng.normal(0.0, 0.05, n), 0.35, 0.999)
    return c_a, c_b


def _accuracy(c: np.ndarray, curve: tuple[float, float]) -> np.ndarray:
    return np.clip(curve[0] * c + curve[1], 0.0, 1.0)


def _rows(c: np.ndarray, predicted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Probability rows whose largest entry is ``c`` at ``predicted`` (the other two share
    ``1 - c`` so that neither reaches ``c``)."""
    n = c.shape[0]
    room = np.minimum(1.0, 0.999 * c / (1.0 - c))  # largest share of 1 - c one other class may take
    share = 0.5 + (rng.random(n) - 0.5) * (2.0 * room - 1.0)
    proba = np.empty((n, 3))
    rows = np.arange(n)
    proba[rows, predicted] = c
    proba[rows, (predicted + 1) % 3] = (1.0 - c) * share
    proba[rows, (predicted + 2) % 3] = (1.0 - c) * (1.0 - share)
    return proba


def pair(n: int, rng: np.random.Generator, curves=DEFAULT_CURVES,
         unsure: float = UNSURE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and both models' probabilities for ``n`` items."""
    c_a, c_b = confidences(n, rng, unsure)
    v = rng.random(n)
    right_a, right_b = v < _accuracy(c_a, curves[0]), v < _accuracy(c_b, curves[1])
    predicted_a = rng.integers(0, 3, n)
    y = np.where(right_a, predicted_a, (predicted_a + rng.integers(1, 3, n)) % 3)
    predicted_b = np.where(right_b, y, (y + rng.integers(1, 3, n)) % 3)
    return y, _rows(c_a, predicted_a, rng), _rows(c_b, predicted_b, rng)


def population(curves=DEFAULT_CURVES, unsure: float = UNSURE,
               draws: int = POPULATION_DRAWS) -> list[dict[str, float]]:
    """Each model's population ECE and MCE (15 equal-width bins of the top confidence)."""
    from calaudit.stats.binning import equal_width_bin_ids

    out = []
    for c, curve in zip(confidences(draws, np.random.default_rng(12345), unsure), curves):
        gap_per_row = c - _accuracy(c, curve)
        bins = equal_width_bin_ids(c, N_BINS)
        mass = np.bincount(bins, minlength=N_BINS) / draws
        gap = np.bincount(bins, weights=gap_per_row, minlength=N_BINS) / draws
        occupied = mass > 0
        gaps = np.abs(gap[occupied] / mass[occupied])
        out.append({"ece": float(np.sum(mass[occupied] * gaps)), "mce": float(gaps.max())})
    return out


def coverage(repetitions: int, *, n: int = N_ITEMS, resamples: int = 200, curves=DEFAULT_CURVES,
             unsure: float = UNSURE, seed: int = 0) -> dict[tuple[str, str], dict[str, float]]:
    """For each metric and reading (``basic``, ``percentile``, and ``calaudit``, the
    interval compare reports): the share of ``repetitions`` whose interval holds the
    population difference, the share called distinguishable and the mean width."""
    from calaudit.stats.bootstrap import basic_interval
    from calaudit.decisions.compare import difference_interval, paired_draws, percentile_interval
    from calaudit.stats.metrics import compute_metrics
    from calaudit.predictions import Predictions

    truth = population(curves, unsure)
    true_difference = {m: truth[0][m] - truth[1][m] for m in METRICS}
    tally: dict[tuple[str, str], list[float]] = {}
    for repetition in range(repetitions):
        y, first, second = pair(n, np.random.default_rng(seed * 100_003 + repetition), curves, unsure)
        models = [Predictions.from_arrays(y, first), Predictions.from_arrays(y, second)]
        refs = [compute_metrics(p.y_true, p.y_proba, n_bins=N_BINS).values for p in models]
        draws = paired_draws(models, n_bins=N_BINS, resamples=resamples, seed=repetition, references=refs,
                             metrics=frozenset(METRICS))
        for metric in METRICS:
            d = refs[0][metric] - refs[1][metric]
            resampled = draws[0][metric] - draws[1][metric]
            readings = {
                "basic": basic_interval(resampled, d, bounds=(-1.0, 1.0))[0],
                "percentile": percentile_interval(resampled, d, bounds=(-1.0, 1.0)),
                "calaudit": difference_interval(d, draws[0][metric], draws[1][metric], metric=metric),
            }
            for name, interval in readings.items():
                row = tally.setdefault((metric, name), [0.0, 0.0, 0.0])
                row[0] += interval.low <= true_difference[metric] <= interval.high
                row[1] += interval.low > 0 or interval.high < 0
                row[2] += interval.high - interval.low
    return {key: {"coverage": v[0] / repetitions, "distinguishable": v[1] / repetitions,
                  "width": v[2] / repetitions} for key, v in tally.items()}


SETTINGS = {
    "A miscalibrated, B less so": (DEFAULT_CURVES, UNSURE),
    "A calibrated, B overconfident by 5 points": (((1.0, 0.0), (1.0, -0.05)), UNSURE),
    "both calibrated": (((1.0, 0.0), (1.0, 0.0)), UNSURE),
    "A miscalibrated, B less so, 4% unsure calls": (DEFAULT_CURVES, 0.04),
    "both calibrated, 4% unsure calls": (((1.0, 0.0), (1.0, 0.0)), 0.04),
}


def main(repetitions: int) -> None:
    for title, (curves, unsure) in SETTINGS.items():
        truth = population(curves, unsure)
        print(f"{title}: population ECE {truth[0]['ece']:.4f} / {truth[1]['ece']:.4f}, "
              f"MCE {truth[0]['mce']:.4f} / {truth[1]['mce']:.4f}")
        for (metric, name), row in sorted(coverage(repetitions, curves=curves, unsure=unsure).items()):
            print(f"  {metric:4} {name:10} covers {row['coverage']:.3f}  distinguishable "
                  f"{row['distinguishable']:.3f}  mean width {row['width']:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
