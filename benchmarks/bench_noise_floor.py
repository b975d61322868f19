"""How far the human noise floor is from what a crowd-equal model really scores
(docs/metrics.md, section 13, "The noise floor").

    python benchmarks/bench_noise_floor.py                    # K = 3, Dirichlet(0.6), 2,000 items
    python benchmarks/bench_noise_floor.py --classes 10 --alpha 0.3

Each repetition draws ``--items`` crowd splits ``H_true ~ Dirichlet(alpha, ..., alpha)``
over ``--classes`` classes and ``n`` votes per item ``Multinomial(n, H_true)``. Two
figures per metric, averaged over the repetitions:

* **crowd-equal**: the metric of the model ``P = H_true`` against the observed votes:
  what a model that knew the crowd's split really scores at this depth;
* **floor**: :func:`calaudit.human.noise_floor.noise_floor` computed from the observed
  votes alone (its mean over its simulations): the plug-in estimate of the former.

``floor - crowd-equal`` is the floor's bias. Also printed: the time of one floor of
``--time-rows`` rows at 5 votes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from calaudit.human.metrics import human_metrics
from calaudit.human.noise_floor import noise_floor

SHOWN = ("human_tvd", "human_kl", "human_cross_entropy", "human_entropy_gap_abs", "human_plurality_agreement")
SHORT = {"human_tvd": "TVD", "human_kl": "KL", "human_cross_entropy": "cross-ent.",
         "human_entropy_gap_abs": "|ent. gap|", "human_plurality_agreement": "agreement"}


def one_depth(votes: int, *, items: int, classes: int, alpha: float, repetitions: int,
              seed: int) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng([seed, votes])
    equal = {name: [] for name in SHOWN}
    floor = {name: [] for name in SHOWN}
    for repetition in range(repetitions):
        truth = rng.dirichlet(np.full(classes, alpha), size=items)
        counts = rng.multinomial(votes, truth)
        observed = counts / votes
        measured = human_metrics(truth, observed, tie_tolerance=0.0)
        found = noise_floor(counts, seed=repetition, simulations=100)["all"]
        for name in SHOWN:
            equal[name].append(measured[name])
            floor[name].append(found.value(name))
    return {name: (float(np.nanmean(floor[name])), float(np.nanmean(equal[name]))) for name in SHOWN}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=0.6)
    parser.add_argument("--votes", type=int, nargs="+", default=[3, 5, 10, 20, 50, 100])
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--time-rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    print(f"K = {args.classes}, H_true ~ Dirichlet({args.alpha:g}), {args.items:,} items, "
          f"{args.repetitions} repetitions; each cell: floor / crowd-equal model")
    print("| votes | " + " | ".join(SHORT[name] for name in SHOWN) + " |")
    print("| --- |" + " --- |" * len(SHOWN))
    for votes in args.votes:
        found = one_depth(votes, items=args.items, classes=args.classes, alpha=args.alpha,
                          repetitions=args.repetitions, seed=args.seed)
        cells = [f"{found[name][0]:.3f} / {found[name][1]:.3f}" for name in SHOWN]
        print(f"| {votes} | " + " | ".join(cells) + " |")
    rng = np.random.default_rng(args.seed)
    counts = rng.multinomial(5, rng.dirichlet(np.full(args.classes, args.alpha), size=args.time_rows))
    start, cpu = time.perf_counter(), time.process_time()
    found = noise_floor(counts, seed=0)["all"]
    print(f"\nOne floor of {args.time_rows:,} rows at 5 votes ({found.simulations} simulations): "
          f"{time.perf_counter() - start:.2f} s wall, {time.process_time() - cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
