"""Time and peak memory of a streamed ``calaudit compare`` of three models' prediction logs.

    python benchmarks/bench_compare_stream.py                 # 3 x 1e5 rows (quick)
    python benchmarks/bench_compare_stream.py 3000000         # 3 x 3e6 rows (docs/speed.md)
    python benchmarks/bench_compare_stream.py 30000000        # 3 x 3e7 rows (the issue's memory goal)
    python benchmarks/bench_compare_stream.py 1000000 --votes 5            # with 5 votes per item
    python benchmarks/bench_compare_stream.py --votes 5 1000000 -- --no-ensemble

Writes (once; kept between runs, in the system's temporary directory unless ``--dir``)
three hive-partitioned Parquet datasets of N rows each, ``--classes`` float32
probability columns, an int32 label and an int64 ``id``: the same ids and labels in
every dataset, each model's rows in its own order (files in another order, rows
shuffled within each file), as three vendors' logs would be; with ``--votes V``, V
crowd votes per item in ``votes_k`` columns (the same for an id in every dataset). Then runs, in a fresh
process, ``calaudit compare A B C --id-col id --json FILE`` (the default 1,000
resamples per model audit and for the paired bootstrap; options after ``--`` are
added) and prints its wall-clock time, its peak RSS (``VmHWM``) and the goal: under
1 GiB whatever N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GOAL_RSS_MB = 1024
DEFAULT_DIR = Path(tempfile.gettempdir()) / "calaudit-bench-compare"
MODELS = 3


def generate(root: Path, rows: int, classes: int, file_rows: int, votes: int = 0) -> list[Path]:
    """The three datasets under ``root`` (written unless ``meta.json`` says they are there)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = root / "meta.json"
    shape = {"rows": rows, "classes": classes, "file_rows": file_rows, "version": 1, "votes": votes}
    paths = [root / f"model{m}" for m in range(MODELS)]
    if meta.exists() and json.loads(meta.read_text()) == shape:
        return paths
    files = -(-rows // file_rows)
    for m, path in enumerate(paths):
        order = np.random.default_rng(100 + m).permutation(files)  # each model writes its files in its order
        for place, chunk in enumerate(order):
            start, stop = chunk * file_rows, min(rows, (chunk + 1) * file_rows)
            rng = np.random.default_rng(int(chunk))  # the items: the same in every model
            z = rng.normal(0.0, 1.5, (stop - start, classes)).astype(np.float32)
            truth = np.exp(z - z.max(axis=1, keepdims=True))
            truth /= truth.sum(axis=1, keepdims=True)
            y = (rng.random(stop - start, dtype=np.float32)[:, None] > truth.cumsum(axis=1)).sum(axis=1)
            y = y.clip(0, classes - 1).astype(np.int32)
            noise = np.random.default_rng(1000 * (m + 1) + int(chunk)).normal(0, 0.3, z.shape).astype(np.float32)
            logits = (1.0, 1.5, 0.7)[m] * z + noise
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            shuffle = np.random.default_rng(7 * (m + 1) + int(chunk)).permutation(stop - start)
            columns = {"id": pa.array(np.arange(start, stop, dtype=np.int64)[shuffle]), "label": pa.array(y[shuffle])}
            columns.update({f"prob_{k}": pa.array(p[shuffle, k]) for k in range(classes)})
            if votes:  # the crowd's votes on the item: the same in every model
                counts = np.random.default_rng(10**6 + int(chunk)).multinomial(votes, truth.astype(np.float64)
                                                                              / truth.sum(axis=1, keepdims=True))
                columns.update({f"votes_{k}": pa.array(counts[shuffle, k].astype(np.int32)) for k in range(classes)})
            part = path / f"part={place:04d}"
            part.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table(columns), part / "data.parquet", row_group_size=262_144)
            del z, truth, p, logits, noise, columns
    meta.write_text(json.dumps(shape))
    return paths


def run_compare(paths: list[Path], extra: list[str]) -> tuple[float, float]:
    """Wall-clock seconds and peak RSS (MB) of a fresh process running the comparison."""
    out = Path(tempfile.mkdtemp(prefix="calaudit-bench-out-")) / "compare.json"
    args = ["compare", *map(str, paths), "--id-col", "id", "--json", str(out), "-q", *extra]
    code = ("import sys, time; from calaudit.cli import cli; t = time.perf_counter(); "
            f"cli.main({args!r}, standalone_mode=False); "
            "print(time.perf_counter() - t); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    started = time.perf_counter()
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                            env=os.environ.copy()).stdout.split()
    total = time.perf_counter() - started
    document = json.loads(out.read_text())
    print(f"  compared {document['n_samples']:,} rows; ranking: {document['ranking']['sentence'][:120]}...")
    print(f"  process wall time {total:.1f} s (comparison {float(output[-2]):.1f} s)")
    return float(output[-2]), int(output[-1]) / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=int, nargs="?", default=100_000, help="rows per model (default 1e5)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--file-rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--votes", type=int, default=0, help="crowd votes per item (default: none)")
    parser.add_argument("extra", nargs="*", help="options for calaudit compare, after --")
    args = parser.parse_args()
    root = args.dir / (f"rows{args.rows}_k{args.classes}" + (f"_v{args.votes}" if args.votes else ""))
    started = time.perf_counter()
    paths = generate(root, args.rows, args.classes, args.file_rows, args.votes)
    size = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 2**30
    print(f"{MODELS} datasets of {args.rows:,} rows x {args.classes} classes (float32), {size:.2f} GB of Parquet "
          f"in {root} (ready in {time.perf_counter() - started:.0f} s)")
    seconds, rss = run_compare(paths, args.extra)
    rows = MODELS * args.rows
    print(f"streamed compare: {seconds:.1f} s, {rows / seconds / 1e6:.2f} M rows/s over the {MODELS} models; "
          f"peak RSS {rss:.0f} MB (goal under {GOAL_RSS_MB} MB: {'met' if rss < GOAL_RSS_MB else 'MISSED'})")


if __name__ == "__main__":
    main()
