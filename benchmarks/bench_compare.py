"""Time of the in-memory ``calaudit compare`` of three models with annotator votes.

    python benchmarks/bench_compare.py                 # 3 models x 1,514 rows x 3 classes, 5 votes a row
    python benchmarks/bench_compare.py --rows 20000

Writes three prediction CSV files of the same items (each model's rows in its own
order; an ``id`` column; ``votes_*`` columns) to a temporary directory, then runs
``calaudit compare A B C --id-col id --json FILE`` in this process ``--repeat`` times
(the default 1,000 resamples) and prints the median wall-clock and CPU seconds. Run it
with ``PYTHONPATH`` pointing at another checkout to time that one on the same data
(docs/speed.md gives both).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd


def generate(root: Path, rows: int, classes: int = 3, votes: int = 5) -> list[Path]:
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, (rows, classes))
    truth = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    counts = np.stack([rng.multinomial(votes, t) for t in truth])
    y = counts.argmax(axis=1)
    paths = []
    for m, sharpen in enumerate((1.0, 1.6, 0.8)):
        p = np.exp(sharpen * z)
        p /= p.sum(axis=1, keepdims=True)
        frame = pd.DataFrame({"id": [f"i{i:06d}" for i in range(rows)], "label": y,
                              **{f"prob_{k}": p[:, k] for k in range(classes)},
                              **{f"votes_{k}": counts[:, k] for k in range(classes)}})
        paths.append(root / f"vendor{m}.csv")
        frame.sample(frac=1.0, random_state=m).to_csv(paths[-1], index=False)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1514)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import calaudit
    from calaudit.cli import cli

    root = Path(tempfile.mkdtemp(prefix="calaudit-bench-compare-memory-"))
    paths = generate(root, args.rows)
    command = ["compare", *map(str, paths), "--id-col", "id", "--json", str(root / "out.json"), "-q"]
    cli.main(command, standalone_mode=False)  # imports and caches warm
    walls, cpus = [], []
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        cli.main(command, standalone_mode=False)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    print(f"calaudit from {Path(calaudit.__file__).parent}")
    print(f"compare of 3 models x {args.rows:,} rows (3 classes, 5 votes a row): median {median(walls):.2f} s "
          f"wall, {median(cpus):.2f} s CPU over {args.repeat} runs (after one warm-up run)")


if __name__ == "__main__":
    main()
