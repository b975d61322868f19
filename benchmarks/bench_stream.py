"""Speed and memory of the streamed audit against a bare Parquet scan, in one process.

    python benchmarks/bench_stream.py                      # 3e7 rows x 10 classes (docs/speed.md)
    python benchmarks/bench_stream.py --rows 100000000     # the 1e8-row run
    python benchmarks/bench_stream.py --rows 3000000 --quick

One generated dataset (``--dir``, kept between runs: generating it costs more than
auditing it): ``--rows`` rows of ``--classes`` float32 probability columns and an
int32 label, hive-partitioned by ``part=`` into files of ``--file-rows`` rows with row
groups of ``--group-rows``. On it, ``--repeat`` rounds, each running in turn (the
order rotating from round to round):

* the reference: a bare ``pyarrow.dataset`` scan of the label and probability columns
  to numpy (every column of every record batch turned into a numpy array; nothing
  else);
* calaudit's streamed audit end to end, as the plain install runs it (the compiled
  kernel where numba imports): ``calaudit run DIR --json FILE`` in this process (the
  scan, validation, statistics, the audit of merged statistics with its default 1,000
  bootstrap resamples, the JSON), with the options given after ``--``;
* the same with ``CALAUDIT_KERNEL=numpy``: the numpy reference, what runs where numba
  cannot be installed;
* with ``--dask``, the same command with ``--engine dask`` on a 2-worker
  ``LocalCluster`` started by the benchmark (``--scheduler``), so cluster start-up is
  not timed.

Printed: the median seconds and rows/s of each, the median over rounds of each run's
ratio to the bare scan of its round (the machine's load moves both), the goals with
their figures (at most 1.3x the bare scan with the plain install; peak RSS under
1 GB, of a fresh process running only the audit: ``VmHWM``), and what compiling the
kernel costs a fresh process with an empty numba cache and loading it from the cache
costs. Times are wall-clock on this machine; only the ratios are meant to travel.
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
from collections.abc import Callable
from pathlib import Path
from statistics import median

import numpy as np

#: The goal (issue 21): a streamed audit with the plain install within this ratio of the bare scan.
GOAL_RATIO = 1.3
#: The goal for the peak RSS of a streamed audit, whatever the rows.
GOAL_RSS_MB = 1024
KERNEL_VARIABLE = "CALAUDIT_KERNEL"

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


def cpu_seconds() -> float:
    """CPU time of this process, every thread (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rounds(repeat: int, runs: dict[str, Callable[[], object]]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall-clock and CPU seconds of each run in each of ``repeat`` rounds, the order rotating."""
    names = list(runs)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for index in range(repeat):
        for name in names[index % len(names):] + names[:index % len(names)]:
            start, start_cpu = time.perf_counter(), cpu_seconds()
            runs[name]()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(cpu_seconds() - start_cpu)
    return wall, cpu


def with_kernel(kernel: str | None, work: Callable[[], dict]) -> Callable[[], dict]:
    """``work`` with ``CALAUDIT_KERNEL`` set (``None``: unset, the default)."""
    def run() -> dict:
        saved = os.environ.pop(KERNEL_VARIABLE, None)
        if kernel is not None:
            os.environ[KERNEL_VARIABLE] = kernel
        try:
            return work()
        finally:
            os.environ.pop(KERNEL_VARIABLE, None)
            if saved is not None:
                os.environ[KERNEL_VARIABLE] = saved
    return run


def compile_cost() -> tuple[float, float]:
    """Seconds a fresh process spends making the compiled kernels ready (importing
    numba, the statistics and the validation kernel on a small batch): with an empty
    numba cache (a first run), then with the cache that run wrote."""
    code = ("import time; t = time.perf_counter(); import numpy as np; from calaudit.engine import kernel; "
            "rng = np.random.default_rng(0); p = rng.dirichlet(np.ones(10), 1000); y = rng.integers(0, 10, 1000); "
            "kernel.fused_statistics(y, p, n_bins=15, fine_bins=2048); "
            "kernel.fused_probabilities([p[:, k].astype(np.float32) for k in range(10)], row_sum_tolerance=1e-3); "
            "print(time.perf_counter() - t)")
    plain = ("import time; t = time.perf_counter(); import numpy as np; from calaudit.engine import kernel; "
             "print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, KERNEL_VARIABLE: "numba"}
        costs = [float(subprocess.run([sys.executable, "-c", source], env=env, check=True, capture_output=True,
                                      text=True).stdout.split()[-1]) for source in (code, code, plain)]
    return costs[0] - costs[2], costs[1] - costs[2]


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
    parser.add_argument("--repeat", type=int, default=5, help="rounds (median); default 5")
    parser.add_argument("--dask", action="store_true", help="also run --engine dask on a 2-worker LocalCluster")
    parser.add_argument("--quick", action="store_true", help="one round, no separate RSS process")
    parser.add_argument("extra", nargs="*", help="options for calaudit run, after --")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    root = args.dir / f"rows{args.rows}_k{args.classes}"
    generate(root, args.rows, args.classes, args.file_rows, args.group_rows)
    size = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 2**30
    print(f"dataset: {args.rows:,} rows x {args.classes} classes, float32, {size:.2f} GB of Parquet in {root}")

    results: dict[str, dict] = {}

    def audit(name: str, kernel: str | None, extra: list[str]) -> Callable[[], None]:
        def run() -> None:
            results[name] = with_kernel(kernel, lambda: calaudit_run(root, extra))()
            assert results[name]["n_samples"] == args.rows, results[name]["n_samples"]
        return run

    def scan() -> None:
        assert bare_scan(root, args.classes) == args.rows

    runs: dict[str, Callable[[], None]] = {
        "bare pyarrow.dataset scan to numpy": scan,
        "calaudit run DIR (stream), plain install": audit("plain", None, args.extra),
        "calaudit run DIR (stream), CALAUDIT_KERNEL=numpy": audit("numpy", "numpy", args.extra),
    }
    cluster = None
    if args.dask:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        dask_args = [*args.extra, "--engine", "dask", "--scheduler", cluster.scheduler_address]
        runs["calaudit run DIR --engine dask (2 workers)"] = audit("dask", None, dask_args)
    for run in runs.values():  # warm up: the compiled kernel's cache, the OS page cache
        run()
    try:
        seconds, cpu = rounds(repeat, runs)
    finally:
        if cluster is not None:
            cluster.close()
    scan_seconds = seconds["bare pyarrow.dataset scan to numpy"]
    ratios = {name: median(t / s for t, s in zip(times, scan_seconds)) for name, times in seconds.items()}
    if args.dask:
        check_dask(results["plain"], results["dask"])
    rss = None if args.quick else peak_rss_of_audit(root, args.extra)

    print(f"\n{repeat} rounds; medians. CPU: this process's threads (not the Dask workers')\n")
    print("| what | seconds | rows/s | ratio to the bare scan (range) | CPU seconds | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    scan_cpu = cpu["bare pyarrow.dataset scan to numpy"]
    for name, times in seconds.items():
        spread = sorted(t / s for t, s in zip(times, scan_seconds))
        cpu_ratio = median(c / s for c, s in zip(cpu[name], scan_cpu))
        print(f"| {name} | {median(times):.2f} | {args.rows / median(times):,.0f} | "
              f"{ratios[name]:.2f}x ({spread[0]:.2f}-{spread[-1]:.2f}) | {median(cpu[name]):.2f} | {cpu_ratio:.2f}x |")
    plain_kernel = results["plain"]["execution"].get("kernel")
    plain_ratio = ratios["calaudit run DIR (stream), plain install"]
    numpy_ratio = ratios["calaudit run DIR (stream), CALAUDIT_KERNEL=numpy"]
    print("\n| goal | figure | verdict |")
    print("|---|---:|---|")
    print(f"| streamed audit, plain install (kernel: {plain_kernel}), at most {GOAL_RATIO}x the bare scan | "
          f"{plain_ratio:.2f}x | {'met' if plain_ratio <= GOAL_RATIO else 'missed'} |")
    print(f"| the same without numba (CALAUDIT_KERNEL=numpy) | {numpy_ratio:.2f}x | "
          f"{'met' if numpy_ratio <= GOAL_RATIO else 'missed'} |")
    if rss is not None:
        print(f"| peak RSS of the audit under {GOAL_RSS_MB:,} MB | {rss:,.0f} MB | "
              f"{'met' if rss < GOAL_RSS_MB else 'missed'} |")
    first, cached = compile_cost()
    print(f"\nmaking the compiled kernels ready in a fresh process: {first:.2f} s with an empty numba cache "
          f"(a first run), {cached:.2f} s from the cache")
    print(f"bench process peak RSS (the bare scan's read-ahead and Dask included): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


def check_dask(result: dict, dask_result: dict) -> None:
    """Exact figures equal, approximate ones within their bound."""
    from calaudit.engine.stream import APPROXIMATE

    assert dask_result["n_samples"] == result["n_samples"]
    bounds = result["execution"]["sketch"]["bounds"]
    for key, value in result["metrics"].items():
        allowed = (bounds.get(key) or 0.0) if key in APPROXIMATE else 1e-9
        if key != "calibration_p_value":
            assert abs(dask_result["metrics"][key] - value) <= allowed, key

if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
