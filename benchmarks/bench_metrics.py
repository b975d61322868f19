"""Speed of the metric suite against a bare numpy single pass, in one process.

    python benchmarks/bench_metrics.py [--n 1000000] [--k 10] [--repeat 5]

The reference is the cheapest honest ECE: argmax, gather the maximum, right-closed
equal-width bin ids, three bincounts. calaudit.audit does far more (input validation
and renormalisation, ECE equal-width and equal-mass, MCE, classwise ECE, Brier, NLL,
the reliability table and per-class figures), so the ratio says what that costs.
Target (issue "Foundation"): full suite within 3x of the single pass at N=1e6, K=10.
Timings are the best of --repeat runs; ratios, not absolute times, are the result.
"""

from __future__ import annotations

import argparse
import time

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


def numpy_single_pass(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """The reference: top-label ECE in one pass of reductions."""
    prediction = proba.argmax(axis=1)
    confidence = proba[np.arange(proba.shape[0]), prediction]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import calaudit
    from calaudit.metrics import compute_metrics

    y, proba = make_data(args.n, args.k)
    reference = numpy_single_pass(y, proba)
    result = calaudit.audit(y, proba)
    assert abs(result.metrics["ece"] - reference) < 1e-9, "calaudit and the reference disagree on ECE"

    t_reference = best_time(lambda: numpy_single_pass(y, proba), args.repeat)
    t_audit = best_time(lambda: calaudit.audit(y, proba), args.repeat)
    t_suite = best_time(lambda: compute_metrics(y, proba, n_bins=15), args.repeat)
    print(f"N={args.n:,} K={args.k} (best of {args.repeat})")
    print(f"{'numpy single pass (reference)':<42} {t_reference * 1e3:9.1f} ms   1.00x")
    print(f"{'calaudit.audit (validation + full suite)':<42} {t_audit * 1e3:9.1f} ms  {t_audit / t_reference:5.2f}x")
    print(f"{'  of which compute_metrics':<42} {t_suite * 1e3:9.1f} ms  {t_suite / t_reference:5.2f}x")
    print(f"target: calaudit.audit within 3x of the single pass -> {'met' if t_audit <= 3 * t_reference else 'missed'}")


if __name__ == "__main__":
    main()
