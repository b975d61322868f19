"""Speed and memory of calaudit's metric engine against references, in one process.

    python benchmarks/bench_metrics.py            # the docs/speed.md table (several minutes)
    python benchmarks/bench_metrics.py --quick    # N = 1e6, K = 10 only

For each (N, K) it times, on the same data, best of --repeat runs:

* the reference, as the issue defines it: a bare numpy single pass (argmax, max,
  right-closed equal-width bin ids, bincounts -> top-label ECE); the core suite is
  also printed against a leaner pass that gathers the maximum at the argmax instead
  of a second reduction ("core vs lean pass");
* calaudit's core suite: validation and every metric of the original spec
  (``Predictions.from_arrays`` + ``compute_metrics``);
* calaudit's default audit: ``calaudit.audit(y, P)`` as a user calls it (every
  estimator, 1,000 bootstrap resamples), and at N = 1e6, K = 10 where its time goes
  (validation, the statistics pass, the row-level figures, the intervals);
* scikit-learn's ``calibration_curve`` on (confidence, correct), relplot's ``smECE``
  and netcal's ``ECE`` when those packages are installed (``pip install -e .[bench]``;
  netcal needs PyTorch, ``pip install torch`` first).

Every figure is printed as a ratio to the reference. Peak memory of the default audit
(tracemalloc, which numpy reports to) is printed as a multiple of the probability
matrix. Goals at N = 1e6, K = 10: core suite within 3x of the single pass; the default
audit within 5x; peak memory under 3x the matrix. The kernel of the statistics pass
(numba or numpy, ``CALAUDIT_KERNEL``) is printed with the table.
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
    calaudit.audit(y, proba)  # compiles the numba passes once, as a first run on a machine does
    # Timed beside a fresh reference: a shared machine's load moves both alike.
    t_full = best_time(lambda: calaudit.audit(y, proba), full_repeat)
    t_ref_again = best_time(lambda: numpy_single_pass(y, proba), repeat)
    row["default audit"] = t_full / min(t_ref, t_ref_again)
    row["peak memory / P"] = peak_memory(lambda: calaudit.audit(y, proba)) / proba.nbytes
    if with_references:
        for name, function in references(y, proba).items():
            row[name] = best_time(function, full_repeat) / t_ref
    return row


def stages(n: int, k: int, repeat: int) -> dict[str, float]:
    """Where the default audit's time goes, each stage as a ratio to the single pass."""
    from calaudit.engine import memory
    from calaudit.predictions import Predictions

    y, proba = make_data(n, k)
    t_ref = best_time(lambda: numpy_single_pass(y, proba), repeat)
    predictions = Predictions.from_arrays(y, proba)
    valid_y, valid_p = predictions.y_true, predictions.y_proba
    figures = memory.memory_figures(valid_y, valid_p, n_bins=15)
    t_statistics = best_time(lambda: memory.one_batch_statistics(valid_y, valid_p, n_bins=15), repeat)
    t_figures = best_time(lambda: memory.memory_figures(valid_y, valid_p, n_bins=15), repeat)
    return {
        "validation": best_time(lambda: Predictions.from_arrays(y, proba), repeat) / t_ref,
        "statistics pass": t_statistics / t_ref,
        # The row-level figures overlap the compiled statistics pass (its helper thread).
        "figures of the sums and the rows": t_figures / t_ref,
        "1,000 resamples": best_time(lambda: memory.memory_intervals(figures, valid_y, valid_p, n_bins=15,
                                                                      resamples=1000, level=0.95, seed=0),
                                     repeat) / t_ref,
    }


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
    from calaudit.engine.kernel import kernel_name

    print()
    print(f"statistics kernel: {kernel_name()}")
    at = next((row for row in rows if row["N"] == 1_000_000 and row["K"] == 10), None)
    if at is not None:
        print()
        for stage, ratio in stages(1_000_000, 10, args.repeat).items():
            print(f"  {stage}: {ratio:.2f}x")
        print()
        goals = (("core suite", "core suite", 3.0), ("default audit (every estimator, 1,000 resamples)",
                 "default audit", 5.0), ("peak memory, in matrices", "peak memory / P", 3.0))
        for label, column, goal in goals:
            value = at[column]
            verdict = "met" if value <= goal else f"missed by {value / goal - 1:.0%}"
            print(f"{label} at N=1e6, K=10: {value:.2f}x (goal {goal:g}x) -> {verdict}")
        print(f"core suite against the lean pass: {at['core vs lean pass']:.2f}x")


if __name__ == "__main__":
    main()
