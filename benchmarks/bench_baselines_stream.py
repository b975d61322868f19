"""What streamed baselines cost, and how close the sample's fit is to a fit on every row.

    python benchmarks/bench_baselines_stream.py                     # 3e6 rows x 10 classes (docs/speed.md)
    python benchmarks/bench_baselines_stream.py --rows 1000000 --repeat 2
    python benchmarks/bench_baselines_stream.py --baseline label-smoothing --repeat 1

One generated dataset (``--dir``, kept between runs; the generator of
``bench_stream.py``: float32 probabilities, labels drawn from them, hive-partitioned).
In one process and in rounds (the order alternating), ``calaudit run DIR`` plain and
with ``--baseline temperature`` (the sample kept during the audit's pass, the fits, a
second pass over every row, the temperature-scaled routing; or ``--baseline
label-smoothing``: the sweep's heads retrained on the sample), both with the defaults
(1,000 bootstrap resamples). Printed: the median of each round's ratio (with / without)
and where the extra time goes; then the temperature the run fitted on its sample
against ``fit_temperature`` on every row in memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stream import generate  # noqa: E402

DEFAULT_DIR = Path(tempfile.gettempdir()) / "calaudit-bench-baselines-stream"


def run(args: list[str]) -> float:
    from click.testing import CliRunner

    from calaudit.cli import cli

    start = time.perf_counter()
    result = CliRunner().invoke(cli, args)
    elapsed = time.perf_counter() - start
    if result.exit_code != 0:
        raise SystemExit(f"calaudit {' '.join(args)} failed: {result.output}{result.exception!r}")
    return elapsed


def full_temperature(root: Path) -> float:
    """``fit_temperature`` on every row of the dataset, in memory."""
    import pyarrow.dataset as ds

    from calaudit.baselines.recalibration import EPS, fit_temperature

    table = ds.dataset(str(root), format="parquet", partitioning="hive").to_table()
    names = sorted((c for c in table.column_names if c.startswith("prob_")), key=lambda c: int(c[6:]))
    proba = np.column_stack([table[c].to_numpy().astype(np.float64) for c in names])
    proba /= proba.sum(axis=1, keepdims=True)
    y = table["label"].to_numpy().astype(np.intp)
    return fit_temperature(np.log(np.maximum(proba, EPS)), y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--baseline", choices=("temperature", "label-smoothing"), default="temperature")
    options = parser.parse_args()
    root = options.dir / f"rows{options.rows}-k{options.classes}"
    generate(root, options.rows, options.classes, file_rows=1_000_000, group_rows=250_000)
    out = Path(tempfile.mkdtemp()) / "r.json"
    plain = ["run", str(root), "--json", str(out), "-q"]
    baseline = plain + ["--baseline", options.baseline]
    run(plain)  # warm-up: imports, the kernel's cache
    rounds = []
    for index in range(options.repeat):
        first, second = (plain, baseline) if index % 2 == 0 else (baseline, plain)
        times = {id(first): run(first), id(second): run(second)}
        rounds.append((times[id(plain)], times[id(baseline)]))
        print(f"round {index + 1}: plain {rounds[-1][0]:.2f} s, --baseline {options.baseline} {rounds[-1][1]:.2f} s "
              f"({rounds[-1][1] / rounds[-1][0]:.2f}x)")
    result = json.loads(out.read_text())
    sample = result["baselines"]["sample"]
    print(f"\n{options.rows:,} rows x {options.classes} classes, {options.repeat} rounds")
    print(f"plain: median {median(r[0] for r in rounds):.2f} s; with --baseline {options.baseline}: "
          f"median {median(r[1] for r in rounds):.2f} s")
    print(f"ratio (with / without), median of rounds: {median(r[1] / r[0] for r in rounds):.2f}x")
    print(f"the fit: {sample['statement']}")
    if options.baseline != "temperature":
        sweep = result["baselines"]["smoothing_sweep"]
        print("sweep ECE: " + ", ".join(f"{a:g}: {e:.4f}" for a, e in zip(sweep["amounts"], sweep["ece"])))
        return
    temperature = result["baselines"]["results"][1]["details"]["temperature"]
    full = full_temperature(root)
    print(f"temperature: {temperature:.5f} from the sample, {full:.5f} on every row in memory "
          f"(relative difference {abs(temperature / full - 1):.2%})")


if __name__ == "__main__":
    main()
