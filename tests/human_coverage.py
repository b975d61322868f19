"""How often the human metrics' two intervals cover what they might be read as
estimating: the simulation behind docs/metrics.md, section 13 (not a test module;
tests/test_human_intervals.py runs it).

The process (K = 3 classes, items independent):

* each item's **true human distribution** ``H_true ~ Dirichlet(0.6, 0.6, 0.6)``: how an
  infinite crowd would split on it (many items near-unanimous, some contested);
* the **model** (``process``): ``overconfident``, ``P = softmax(2 log(H_true + 0.02) +
  N(0, 0.5^2))``, sharper than the crowd and noisy; or ``crowd-calibrated``, ``P =
  H_true``, a model that knows exactly how the crowd would split;
* **votes**: ``votes`` annotators per item (default :data:`VOTES`, 5),
  ``Multinomial(votes, H_true)``.

Two estimands per metric, each computed on ``POPULATION_ITEMS`` (1,000,000) items:

* **depth** (the table says ``depth-5`` for 5 votes): the population value of the
  plug-in metric with that many votes per item, ``E_items E_votes[term(P, H_n)]``
  (agreement: expected agreements over expected untied rows). This is what the figure
  estimates at this annotation depth;
* **crowd** (``infinite crowd``): the metric against ``H_true``, ``E_items[term(P,
  H_true)]``: what the figure would be with unlimited annotators.

Each repetition draws ``n`` items with their votes, computes the metrics and both
intervals (:func:`calaudit.human.intervals.human_intervals`) and records whether each
interval holds each estimand. ``python tests/human_coverage.py --help`` lists the
settings; with no arguments it prints the tables of docs/metrics.md (about 7 minutes).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import numpy as np

VOTES = 5
CLASSES = 3
ALPHA = 0.6
POPULATION_ITEMS = 1_000_000
ESTIMANDS = ("depth", "crowd")
INTERVALS = ("plain", "annotator noise")


def items(n: int, rng: np.random.Generator, process: str = "overconfident",
          votes: int = VOTES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(H_true, P, vote counts)`` of ``n`` simulated items of ``process`` (:data:`PROCESSES`)."""
    truth = rng.dirichlet(np.full(CLASSES, ALPHA), size=n)
    logits = 2.0 * np.log(truth + 0.02) + rng.normal(0.0, 0.5, (n, CLASSES))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    counts = rng.multinomial(votes, truth).astype(np.float64)
    if process == "crowd-calibrated":
        proba = truth.copy()  # the model knows exactly how the crowd would split
    return truth, proba, counts


#: ``overconfident``: the model above; ``crowd-calibrated``: ``P = H_true``, so every
#: crowd value is at its best (TVD, KL and both entropy gaps 0).
PROCESSES = ("overconfident", "crowd-calibrated")


@functools.cache
def estimands(process: str = "overconfident", votes: int = VOTES) -> dict[str, dict[str, float]]:
    """Both estimands of every metric, from ``POPULATION_ITEMS`` items (one vote draw each)."""
    from calaudit.human.metrics import human_metrics

    truth, proba, counts = items(POPULATION_ITEMS, np.random.default_rng(20221207), process, votes)
    return {"depth": human_metrics(proba, counts / votes), "crowd": human_metrics(proba, truth)}


def runs(n: int, resamples: int, repetitions: int, seed: int = 5000, process: str = "overconfident",
         votes: int = VOTES) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """One value per repetition, keyed like :func:`coverage`: 1.0 or 0.0 for whether an
    interval held an estimand (NaN where the metric got no interval), the width, the
    shift and whether the annotator-noise interval was at least as wide. Repetition
    ``r`` draws its items and votes from seed ``seed + r`` and its resamples from seed ``r``."""
    from calaudit.human.intervals import human_intervals
    from calaudit.human.metrics import human_metrics
    from calaudit.predictions.human_labels import human_from_votes
    from calaudit.errors import Location

    targets = estimands(process, votes)
    values_by_key: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    def put(key: tuple[str, str], name: str, repetition: int, value: float) -> None:
        cell = values_by_key.setdefault(key, {})
        cell.setdefault(name, np.full(repetitions, np.nan))[repetition] = float(value)

    for repetition in range(repetitions):
        _, proba, counts = items(n, np.random.default_rng(seed + repetition), process, votes)
        human = human_from_votes(counts, location=Location("votes"))
        values = human_metrics(proba, human.distribution)
        found = human_intervals(proba, human, estimates=values, resamples=resamples, seed=repetition)
        for interval_name, result in zip(INTERVALS, (found.plain, found.with_annotator_noise)):
            for name, interval in result.intervals.items():
                for estimand, value in [*((e, targets[e][name]) for e in ESTIMANDS), ("estimate", values[name])]:
                    put((interval_name, estimand), name, repetition, interval.low <= value <= interval.high)
                put((interval_name, "width"), name, repetition, interval.high - interval.low)
        for name, interval in found.plain.intervals.items():
            nested = found.with_annotator_noise.intervals[name]
            put(("wider", "share"), name, repetition, nested.high - nested.low >= interval.high - interval.low)
        for name, shift in found.annotator_noise_shift.items():
            put(("shift", "mean"), name, repetition, shift)
    return values_by_key


def summary(per_repetition: dict[tuple[str, str], dict[str, np.ndarray]]) -> dict[tuple[str, str], dict[str, float]]:
    """:func:`runs` averaged over the repetitions (a missing interval counts as not covering)."""
    return {key: {name: float(np.nansum(values) / values.size) for name, values in cell.items()}
            for key, cell in per_repetition.items()}


def coverage(n: int, resamples: int, repetitions: int, seed: int = 5000, process: str = "overconfident",
             votes: int = VOTES) -> dict[tuple[str, str], dict[str, float]]:
    """``{(interval, estimand): {metric: share of repetitions covering it}}`` for the
    intervals ``"plain"`` and ``"annotator noise"`` and the estimands of
    :data:`ESTIMANDS` and ``"estimate"`` (the repetition's own estimate: 1 by
    construction). Also ``(interval, "width")``: the mean width, ``("wider",
    "share")``: how often the annotator-noise interval is at least as wide as the plain
    one, and ``("shift", "mean")``: the mean ``annotator_noise_shift``."""
    return summary(runs(n, resamples, repetitions, seed, process, votes))


def table(n: int, resamples: int, repetitions: int, process: str = "overconfident", votes: int = VOTES) -> str:
    """The coverage table in markdown: one row per metric; the two estimands, each
    interval's coverage of each, their mean widths, and the mean shift next to the
    bias it estimates (depth value minus crowd value)."""
    from calaudit.human.metrics import HUMAN_METRICS

    rates = coverage(n, resamples, repetitions, process=process, votes=votes)
    targets = estimands(process, votes)
    depth = f"depth-{votes}"
    columns = [(interval, estimand) for interval in INTERVALS for estimand in ESTIMANDS]
    label = {"depth": depth, "crowd": "crowd"}
    lines = [
        f"{process}: {n} items, {votes} votes each, {repetitions} repetitions, {resamples} resamples",
        "",
        f"| metric | {depth} value | crowd value | "
        + " | ".join(f"{i} covers {label[e]}" for i, e in columns)
        + f" | plain width | annotator-noise width | noise interval wider | mean shift | bias ({depth} - crowd) |",
        "| --- | --- | --- | " + " | ".join("---" for _ in columns) + " | --- | --- | --- | --- | --- |",
    ]
    for name in HUMAN_METRICS:
        cells = [f"{rates[column].get(name, float('nan')):.3f}" for column in columns]
        cells += [f"{rates[(interval, 'width')].get(name, float('nan')):.4f}" for interval in INTERVALS]
        cells.append(f"{rates[('wider', 'share')].get(name, float('nan')):.3f}")
        bias = targets["depth"][name] - targets["crowd"][name]
        cells += [f"{rates[('shift', 'mean')].get(name, float('nan')):+.4f}", f"{bias:+.4f}"]
        lines.append(f"| {name} | {targets['depth'][name]:.4f} | {targets['crowd'][name]:.4f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--process", choices=PROCESSES, action="append",
                        help="model(s) to simulate (default: both)")
    parser.add_argument("--repetitions", type=int, default=500, help="repetitions, overconfident model")
    parser.add_argument("--calibrated-repetitions", type=int, default=300, help="repetitions, crowd-calibrated")
    parser.add_argument("--resamples", type=int, default=500)
    parser.add_argument("--settings", default="100x5,300x5,1000x5,300x3",
                        help="comma-separated ITEMSxVOTES settings (default: %(default)s)")
    options = parser.parse_args(argv)
    settings = [tuple(int(part) for part in setting.split("x")) for setting in options.settings.split(",")]
    for process in options.process or PROCESSES:
        repetitions = options.repetitions if process == "overconfident" else options.calibrated_repetitions
        for n, votes in settings:
            start = time.perf_counter()
            print(table(n, resamples=options.resamples, repetitions=repetitions, process=process, votes=votes))
            print(f"\n({time.perf_counter() - start:.0f} s)\n", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    main(sys.argv[1:])
