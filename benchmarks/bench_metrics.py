"""Speed and memory of calaudit's metric engine against references, in one process.

    python benchmarks/bench_metrics.py            # the README table (several minutes)
    python benchmarks/bench_metrics.py --quick    # N = 1e6, K = 10 only

For each (N, K) it times, on the same data, best of --repeat runs:

* the reference, as the issue defines it: a bare numpy single pass (argmax, max,
  right-closed equal-width bin ids, bincounts -> top-label ECE); the core suite is
  also printed against a leaner pass that gathers the maximum at the argmax instead
  of a second reduction ("core vs lean pass");
* calaudit's core suite: validation and every metric of the original spec
  (``Predictions.from_arrays`` + ``compute_metrics``);
* calaudit's full audit: ``calaudit.audit`` with the estimators and 1,000 bootstrap
  resamples;
* scikit-learn's ``calibration_curve`` on (confidence, correct), relplot's ``smECE``
  and netcal's ``ECE`` when those packages are installed (``pip install -e .[bench]``;
  netcal needs PyTorch, ``pip install torch`` first).

Every figure is printed as a ratio to the reference. Peak memory of the full audit
(tracemalloc, which numpy reports to) is printed as a multiple of the probability
matrix. Targets: core suite within 3x of the single pass at N = 1e6, K = 10; 1,000
bootstrap resamples at N = 1e6 within 20x; peak memory under 3x the matrix.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def make_data(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of scaled Gaussian logits, labels drawn from the probabilities."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 3.0
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    cumulative = proba.cumsum(axis=1)
    labels = (rng.random(n)[:, None] > cumulative).sum(axis=1).clip(max=k - 1)
    return labels, proba


def numpy_single_pass(y: np.ndarray, proba: np.ndarray, n_bins: int = 15, *, lean: bool = False) -> float:
    """The reference of the issue: top-label ECE from argmax, max and bincounts.

    ``lean=True`` gathers the maximum at the argmax instead of a second reduction
    (faster; printed alongside, so neither reference flatters calaudit).
    """
    prediction = proba.argmax(axis=1)
    confidence = proba[np.arange(proba.shape[0]), prediction] if lean else proba.max(axis=1)
    correct = prediction == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], confidence, side="left")
    sum_conf = np.bincount(ids, weights=confidence, minlength=n_bins)
    sum_correct = np.bincount(ids, weights=correct, minlength=n_bins)
    return float(np.abs(sum_correct - sum_conf).sum() / proba.shape[0])


def best_time(function, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def core_suite(y: np.ndarray, proba: np.ndarray) -> None:
    from calaudit.stats.metrics import compute_metrics
    from calaudit.predictions import Predictions

    predictions = Predictions.from_arrays(y, proba)
    compute_metrics(predictions.y_true, predictions.y_proba, n_bins=15)


def references(y: np.ndarray, proba: np.ndarray) -> dict[str, object]:
    """Callables of the optional reference libraries that are installed."""
    prediction = proba.argmax(axis=1)
    confidence = proba[np.arange(proba.shape[0]), prediction]
    correct = (prediction == y).astype(float)
    found: dict[str, object] = {}
    from sklearn.calibration import calibration_curve

    found["sklearn calibration_curve"] = lambda: calibration_curve(correct, confidence, n_bins=15)
    try:
        import relplot

        found["relplot smECE"] = lambda: relplot.smECE(confidence, correct)
    except ImportError:
        pass
    try:
        from netcal.metrics import ECE

        found["netcal ECE"] = lambda: ECE(15).measure(proba, y)
    except ImportError:
        pass
    return found


def peak_memory(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run(n: int, k: int, repeat: int, with_references: bool) -> dict[str, float]:
    import calaudit

    y, proba = make_data(n, k)
    reference = numpy_single_pass(y, proba)
    assert abs(calaudit.audit(y, proba, bootstrap=0).metrics["ece"] - reference) < 1e-9
    t_ref = best_time(lambda: numpy_single_pass(y, proba), repeat)
    t_lean = best_time(lambda: numpy_single_pass(y, proba, lean=True), repeat)
    row = {"N": n, "K": k, "single pass ms": t_ref * 1e3}
    t_core = best_time(lambda: core_suite(y, proba), repeat)
    row["core suite"] = t_core / t_ref
    row["core vs lean pass"] = t_core / t_lean
    full_repeat = max(1, repeat // 2)
    row["full + 1000 bootstrap"] = best_time(lambda: calaudit.audit(y, proba, bootstrap=1000), full_repeat) / t_ref
    row["peak memory / P"] = peak_memory(lambda: calaudit.audit(y, proba, bootstrap=1000)) / proba.nbytes
    if with_references:
        for name, function in references(y, proba).items():
            row[name] = best_time(function, full_repeat) / t_ref
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only N = 1e6, K = 10")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    grid = [(1_000_000, 10)] if args.quick else [
        (10_000, 10), (100_000, 10), (1_000_000, 10), (10_000_000, 10),
        (100_000, 2), (100_000, 100), (100_000, 1000),
    ]
    rows = [run(n, k, args.repeat, with_references=True) for n, k in grid]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if value is None:
                cells.append("n/a")
            elif column in ("N", "K"):
                cells.append(f"{int(value):,}")
            elif column == "single pass ms":
                cells.append(f"{value:.1f}")
            else:
                cells.append(f"{value:.2f}x")
        print("| " + " | ".join(cells) + " |")
    at = next((row for row in rows if row["N"] == 1_000_000 and row["K"] == 10), None)
    if at is not None:
        print()
        print(f"core suite at N=1e6, K=10: {at['core suite']:.2f}x (target 3x) -> "
              f"{'met' if at['core suite'] <= 3 else 'missed by ' + format(at['core suite'] / 3 - 1, '.0%')}"
              f"; against the lean pass: {at['core vs lean pass']:.2f}x")
        boot = at["full + 1000 bootstrap"]
        print(f"full audit with 1,000 resamples at N=1e6: {boot:.2f}x (target 20x) -> "
              f"{'met' if boot <= 20 else 'missed by ' + format(boot / 20 - 1, '.0%')}")
        memory = at["peak memory / P"]
        print(f"peak memory at N=1e6: {memory:.2f}x the matrix (target 3x) -> "
              f"{'met' if memory <= 3 else 'missed by ' + format(memory / 3 - 1, '.0%')}")


if __name__ == "__main__":
    main()
