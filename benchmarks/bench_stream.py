"""Speed and memory of the streamed audit against a bare Parquet scan, in one process.

    python benchmarks/bench_stream.py                      # 3e7 rows x 10 classes (the README table)
    python benchmarks/bench_stream.py --rows 100000000     # the 1e8-row run
    python benchmarks/bench_stream.py --rows 3000000 --quick

One generated dataset (``--dir``, kept between runs: generating it costs more than
auditing it): ``--rows`` rows of ``--classes`` float32 probability columns and an
int32 label, hive-partitioned by ``part=`` into files of ``--file-rows`` rows with row
groups of ``--group-rows``. On it, best of ``--repeat`` runs each, alternating:

* the reference: a bare ``pyarrow.dataset`` scan of the label and probability columns
  to numpy (every column of every record batch turned into a numpy array; nothing
  else);
* calaudit's streamed audit end to end: ``calaudit run DIR --json FILE`` in this
  process (the scan, validation, statistics, the audit of merged statistics, the JSON),
  with the options given after ``--`` (e.g. ``-- --bootstrap 1000``);
* with ``--dask``, the same command with ``--engine dask`` on a 2-worker
  ``LocalCluster`` started by the benchmark (``--scheduler``), so cluster start-up is
  not timed.

Printed: rows/s of each, the ratio to the reference (targets: within 2x, moonshot
1.2x), and the peak RSS of a fresh process running only the audit (``VmHWM``;
target: under 1 GB whatever the rows). Times are wall-clock on this machine; only the
ratios are meant to travel.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path(tempfile.gettempdir()) / "calaudit-bench-stream"


def generate(root: Path, rows: int, classes: int, file_rows: int, group_rows: int, seed: int = 0) -> None:
    """Write the dataset unless ``root`` already holds one of this shape (``meta.json``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = {"rows": rows, "classes": classes, "file_rows": file_rows, "group_rows": group_rows, "seed": seed}
    marker = root / "_meta.json"
    if marker.exists() and json.loads(marker.read_text()) == meta:
        return
    if root.exists():
        for old in sorted(root.rglob("*"), reverse=True):
            old.unlink() if old.is_file() else old.rmdir()
    rng = np.random.default_rng(seed)
    names = [f"prob_c{k}" for k in range(classes)]
    for part, start in enumerate(range(0, rows, file_rows)):
        n = min(file_rows, rows - start)
        logits = (rng.standard_normal((n, classes), dtype=np.float32) * np.float32(3.0))
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        proba /= proba.sum(axis=1, keepdims=True)
        # Labels drawn from the probabilities: a calibrated model with some noise.
        labels = (rng.random(n, dtype=np.float32)[:, None] > proba.cumsum(axis=1)).sum(axis=1)
        labels = np.minimum(labels, classes - 1).astype(np.int32)
        table = pa.table({"label": labels, **{name: proba[:, k] for k, name in enumerate(names)}})
        folder = root / f"part={part:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "data.parquet", row_group_size=group_rows)
        print(f"\rgenerating: {start + n:,} / {rows:,} rows", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    marker.write_text(json.dumps(meta))


def bare_scan(root: Path, classes: int) -> int:
    """The reference: every label and probability column of every batch to numpy."""
    import pyarrow.dataset as ds

    columns = ["label", *[f"prob_c{k}" for k in range(classes)]]
    dataset = ds.dataset(root, format="parquet", partitioning="hive", exclude_invalid_files=True)
    rows = 0
    for batch in dataset.to_batches(columns=columns, batch_size=65536):
        arrays = [column.to_numpy(zero_copy_only=False) for column in batch.columns]
        rows += arrays[0].shape[0]
    return rows


def calaudit_run(root: Path, extra: list[str]) -> dict:
    from calaudit.cli import cli

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        try:
            cli.main(args=["run", str(root), "--json", str(out), "-q", *extra], prog_name="calaudit",
                     standalone_mode=False)
        except SystemExit as exc:  # the gate's exit code 1 is not a failure of the benchmark
            if exc.code not in (0, 1, None):
                raise
        return json.loads(out.read_text())


def best_of(repeat: int, work) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = work()
        best = min(best, time.perf_counter() - start)
    return best, value


def peak_rss_of_audit(root: Path, extra: list[str]) -> float:
    """Peak RSS in MB of a fresh process that runs only the audit: its ``VmHWM``
    (``ru_maxrss`` would inherit this process's peak across fork and exec)."""
    code = ("import sys, json; sys.path.insert(0, %r); import bench_stream as b; "
            "b.calaudit_run(__import__('pathlib').Path(%r), json.loads(%r)); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])") % (
        str(Path(__file__).parent), str(root), json.dumps(extra))
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(output.strip().splitlines()[-1]) / 1024.0  # kB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=30_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--file-rows", type=int, default=2_000_000)
    parser.add_argument("--group-rows", type=int, default=500_000)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dask", action="store_true", help="also run --engine dask on a 2-worker LocalCluster")
    parser.add_argument("--quick", action="store_true", help="one repeat, no separate RSS process")
    parser.add_argument("extra", nargs="*", help="options for calaudit run, after --")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    root = args.dir / f"rows{args.rows}_k{args.classes}"
    generate(root, args.rows, args.classes, args.file_rows, args.group_rows)
    size = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 2**30
    print(f"dataset: {args.rows:,} rows x {args.classes} classes, float32, {size:.2f} GB of Parquet in {root}")

    scan_time, rows = best_of(repeat, lambda: bare_scan(root, args.classes))
    assert rows == args.rows, rows
    audit_time, result = best_of(repeat, lambda: calaudit_run(root, args.extra))
    assert result["n_samples"] == args.rows, result["n_samples"]
    lines = [("bare pyarrow.dataset scan to numpy", scan_time, None),
             ("calaudit run DIR (stream)", audit_time, None if args.quick else peak_rss_of_audit(root, args.extra))]
    if args.dask:
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
            dask_args = [*args.extra, "--engine", "dask", "--scheduler", cluster.scheduler_address]
            dask_time, dask_result = best_of(repeat, lambda: calaudit_run(root, dask_args))
        assert dask_result["n_samples"] == args.rows
        from calaudit.engine.stream import APPROXIMATE

        bounds = result["execution"]["sketch"]["bounds"]
        for key, value in result["metrics"].items():  # exact figures equal, approximate ones within their bound
            allowed = (bounds.get(key) or 0.0) if key in APPROXIMATE else 1e-9
            if key != "calibration_p_value":
                assert abs(dask_result["metrics"][key] - value) <= allowed, key
        lines.append(("calaudit run DIR --engine dask (2 workers)", dask_time, None))
    print(f"\n| what | seconds | rows/s | ratio to the bare scan | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, rss in lines:
        rss_text = f"{rss:,.0f} MB" if rss is not None else "-"
        print(f"| {name} | {seconds:.2f} | {args.rows / seconds:,.0f} | {seconds / scan_time:.2f}x | {rss_text} |")
    kernel = result["execution"].get("kernel")
    print(f"\nkernel: {kernel}; bench process peak RSS (the bare scan's read-ahead and Dask included): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
