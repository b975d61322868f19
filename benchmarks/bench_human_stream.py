"""The streamed human intervals beside the in-memory ones (docs/streaming.md, "Human
votes and soft labels").

1. Width: the streamed interval (bootstrap of 4,096 hashed groups, votes redrawn per
   batch) over the in-memory one (row bootstrap), per metric, on 5,000 and 200,000
   items with 5 votes each.
2. Coverage: how often the streamed plain interval holds the figure's expected value
   at this annotation depth (the metric on 2,000,000 items), over repeated data sets of
   2,000 items, beside the in-memory interval's coverage on the same data sets.
3. Cost (docs/speed.md, "Human votes streamed"): in one process and in rounds (the
   order rotating), ``calaudit run DIR --engine stream`` on a Parquet dataset of
   1,000,000 rows x 3 classes with 5 votes per item, beside the same dataset without
   the vote columns (the plain streamed audit), with ``--bootstrap 0`` (the human
   metrics, hard/easy parts and the noise floor) and with the default 1,000 resamples
   (also the intervals and their vote redraws). CPU seconds (user + system) of the
   run, the ratio to the plain audit's and the microseconds added per row.

Run: ``python benchmarks/bench_human_stream.py [replicates]`` (about two minutes), or
``python benchmarks/bench_human_stream.py speed [rows] [rounds]`` for the cost alone
(the data are written under the system's temporary directory).
"""

from __future__ import annotations

import sys

import numpy as np

from calaudit.engine.batch import Batch
from calaudit.engine.human_result import grouped_human_intervals
from calaudit.engine.human_stream import HumanObserver, HumanReading, HumanSettings
from calaudit.errors import Location
from calaudit.human.intervals import human_intervals
from calaudit.human.metrics import human_metrics
from calaudit.predictions.human_labels import human_from_votes

K, VOTES = 3, 5


def crowd(n: int, rng: np.random.Generator):
    truth = rng.dirichlet(np.full(K, 0.7), size=n)
    counts = rng.multinomial(VOTES, truth)
    logits = 3.0 * np.log(np.maximum(truth, 0.02)) + rng.normal(0, 0.5, size=(n, K))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    return proba / proba.sum(axis=1, keepdims=True), counts


def streamed(proba, counts, estimates, resamples, seed, batch_rows=65536):
    reading = HumanReading("votes", tuple(f"v{k}" for k in range(K)), 0.01)
    observer = HumanObserver(HumanSettings(reading, n_bins=15, seed=seed, threshold=0.611, root=None))
    y = proba.argmax(axis=1)
    for start in range(0, proba.shape[0], batch_rows):
        part = slice(start, start + batch_rows)
        observer.add(Batch(y[part], proba[part], "logs.parquet", 0, start,
                           columns={f"v{k}": counts[part, k] for k in range(K)}))
    return grouped_human_intervals(observer.all, estimates, resamples=resamples, level=0.95, seed=seed,
                                   annotator_noise=True)


def widths(n: int, resamples: int = 1000) -> None:
    proba, counts = crowd(n, np.random.default_rng(n))
    human = human_from_votes(counts, location=Location("votes"))
    estimates = human_metrics(proba, human.distribution, tie_tolerance=0.0)
    memory = human_intervals(proba, human, estimates=estimates, resamples=resamples, seed=1)
    stream = streamed(proba, counts, estimates, resamples, seed=1)
    print(f"\n{n:,} items: streamed width / in-memory width (plain; with annotator noise)")
    for name in memory.plain.intervals:
        ratios = []
        for mine, theirs in ((stream.plain, memory.plain), (stream.with_annotator_noise, memory.with_annotator_noise)):
            a, b = mine.intervals[name], theirs.intervals[name]
            ratios.append((a.high - a.low) / (b.high - b.low))
        print(f"  {name:28s} {ratios[0]:.3f}  {ratios[1]:.3f}")


def coverage(replicates: int, n: int = 2000, resamples: int = 400) -> None:
    rng = np.random.default_rng(2026)
    big_p, big_v = crowd(2_000_000, rng)
    truth = human_metrics(big_p, big_v / VOTES, tie_tolerance=0.0)
    held = {"stream": {}, "memory": {}}
    for r in range(replicates):
        proba, counts = crowd(n, rng)
        human = human_from_votes(counts, location=Location("votes"))
        estimates = human_metrics(proba, human.distribution, tie_tolerance=0.0)
        found = {"stream": streamed(proba, counts, estimates, resamples, seed=r, batch_rows=500).plain,
                 "memory": human_intervals(proba, human, estimates=estimates, resamples=resamples, seed=r,
                                           annotator_noise=False).plain}
        for engine, result in found.items():
            for name, interval in result.intervals.items():
                held[engine].setdefault(name, []).append(interval.low <= truth[name] <= interval.high)
    print(f"\nCoverage of the expected value at {VOTES} votes, {replicates} data sets of {n:,} items (95% nominal)")
    print(f"  {'metric':28s} stream  memory")
    for name in held["memory"]:
        print(f"  {name:28s} {np.mean(held['stream'][name]):.3f}   {np.mean(held['memory'][name]):.3f}")


def speed(rows: int = 1_000_000, repeat: int = 3) -> None:
    import resource
    import tempfile
    import time
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from calaudit.cli import cli

    root = Path(tempfile.gettempdir()) / f"calaudit-bench-human-{rows}"
    rng = np.random.default_rng(0)
    proba, counts = crowd(rows, rng)
    labels = counts.argmax(axis=1).astype(np.int32)
    for name, votes in (("plain", False), ("votes", True)):
        columns = {"label": labels, **{f"prob_c{k}": proba[:, k].astype(np.float32) for k in range(K)}}
        if votes:
            columns.update({f"votes_c{k}": counts[:, k].astype(np.int32) for k in range(K)})
        (root / name).mkdir(parents=True, exist_ok=True)
        for part in range(4):  # four files, row groups of 250,000 rows at most
            rows_of = slice(part * rows // 4, (part + 1) * rows // 4)
            pq.write_table(pa.table({key: value[rows_of] for key, value in columns.items()}),
                           root / name / f"part-{part}.parquet", row_group_size=250_000)

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def run(name: str, extra: list[str]) -> None:
        out = root / "audit.json"
        cli.main(args=["run", str(root / name), "--engine", "stream", "--json", str(out), "-q", *extra],
                 prog_name="calaudit", standalone_mode=False)

    runs = {(name, boot): [] for name in ("plain", "votes") for boot in ("0", "1000")}
    order = list(runs)
    run("votes", ["--bootstrap", "0"])  # warm up: imports, numba's cache
    for index in range(repeat):
        for key in order[index % len(order):] + order[:index % len(order)]:
            start = cpu()
            wall = time.perf_counter()
            run(key[0], ["--bootstrap", key[1]])
            runs[key].append((cpu() - start, time.perf_counter() - wall))
    print(f"\nCost on {rows:,} rows x {K} classes, {VOTES} votes per item, median of {repeat} rounds (CPU s; wall s)")
    for boot in ("0", "1000"):
        plain = float(np.median([c for c, _ in runs[("plain", boot)]]))
        human = float(np.median([c for c, _ in runs[("votes", boot)]]))
        walls = [float(np.median([w for _, w in runs[(name, boot)]])) for name in ("plain", "votes")]
        print(f"  --bootstrap {boot:>4}: plain {plain:.2f} ({walls[0]:.2f}), with votes {human:.2f} ({walls[1]:.2f}): "
              f"{human / plain:.1f}x, {(human - plain) / rows * 1e6:.1f} us per row added")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "speed":
        speed(*(int(value) for value in sys.argv[2:4]))
        sys.exit(0)
    widths(5_000)
    widths(200_000)
    coverage(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
