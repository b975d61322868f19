"""The compiled kernel (numba) gives the numpy reference's statistics; the reference
stays what runs without numba or with CALAUDIT_KERNEL=numpy."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calaudit.engine import kernel
from calaudit.engine.kernel import Accumulator, fused_statistics
from calaudit.engine.statistics import StreamStatistics
from calaudit.errors import UsageError



def _data(n: int, k: int, seed: int, *, ties: bool = False):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(k, 0.4), n)
    if ties:  # values on bin edges, exact ties and certainties
        proba = np.round(proba * 15) / 15
        proba[:, 0] += 1.0 - proba.sum(axis=1)
        proba = np.abs(proba)
        proba /= proba.sum(axis=1, keepdims=True)
        proba[: n // 10] = np.eye(k)[rng.integers(0, k, n // 10)]
    return rng.integers(0, k, n), proba


def assert_same(got: StreamStatistics, want: StreamStatistics) -> None:
    for f in fields(StreamStatistics):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if isinstance(b, np.ndarray) and b.dtype == np.int64:
            assert np.array_equal(a, b), f.name
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9, err_msg=f.name)


@pytest.mark.parametrize("k", [2, 3, 10, 120])
@pytest.mark.parametrize("ties", [False, True])
def test_the_kernel_equals_the_numpy_reference(k, ties):
    y, proba = _data(2000, k, seed=k, ties=ties)
    for n_bins, fine_bins in ((15, 2**14), (1, 1), (7, 1000)):
        assert_same(fused_statistics(y, proba, n_bins=n_bins, fine_bins=fine_bins),
                    StreamStatistics.from_batch(y, proba, n_bins=n_bins, fine_bins=fine_bins))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 300), st.integers(2, 6), st.integers(0, 10_000), st.lists(st.integers(1, 80), max_size=6))
def test_accumulating_batches_equals_the_reference_of_the_whole(n, k, seed, cuts):
    y, proba = _data(n, k, seed, ties=seed % 2 == 0)
    edges = sorted({0, n, *[c % (n + 1) for c in cuts]})
    accumulator = Accumulator(n_bins=10, fine_bins=512)
    for start, stop in zip(edges[:-1], edges[1:]):
        accumulator.add(y[start:stop], proba[start:stop])
    assert accumulator.kernel == "numba"
    assert_same(accumulator.result(), StreamStatistics.from_batch(y, proba, n_bins=10, fine_bins=512))


def test_calaudit_kernel_numpy_forces_the_reference(monkeypatch):
    monkeypatch.setenv(kernel.KERNEL_VARIABLE, "numpy")
    assert kernel.kernel_name() == "numpy"
    accumulator = Accumulator(n_bins=15, fine_bins=2**14)
    y, proba = _data(500, 4, seed=1)
    accumulator.add(y[:200], proba[:200])
    accumulator.add(y[200:], proba[200:])
    assert accumulator.kernel == "numpy"
    assert_same(accumulator.result(), StreamStatistics.from_batch(y, proba))


@pytest.fixture
def without_numba(monkeypatch):
    """``import numba`` fails (ImportError), as where it is not installed."""
    monkeypatch.setitem(sys.modules, "numba", None)
    kernel._compiled.cache_clear()
    yield
    monkeypatch.undo()
    kernel._compiled.cache_clear()  # the next test compiles (or loads) the kernel again


def test_without_numba_the_reference_runs_and_asking_for_numba_is_a_usage_error(monkeypatch, without_numba):
    monkeypatch.delenv(kernel.KERNEL_VARIABLE, raising=False)
    assert not kernel.available()
    assert kernel.kernel_name() == "numpy" and kernel.kernel_name(10**9) == "numpy"
    accumulator = Accumulator(n_bins=15, fine_bins=2**14)
    y, proba = _data(300, 3, seed=2)
    accumulator.add(y, proba)
    assert accumulator.kernel == "numpy"
    assert_same(accumulator.result(), StreamStatistics.from_batch(y, proba))
    monkeypatch.setenv(kernel.KERNEL_VARIABLE, "numba")
    with pytest.raises(UsageError, match=r"numba cannot be imported here \(.*numba.*\); expected numba installed "
                                         r"\(pip install numba\)"):
        kernel.kernel_name()


def test_the_inputs_are_only_read():
    y, proba = _data(300, 5, seed=3)
    y.setflags(write=False)
    proba.setflags(write=False)
    fused_statistics(y, proba, n_bins=15, fine_bins=2**14)


# ---------------------------------------------------------------- fused validation


def _columns(n, k, dtype, seed=0, off=0.0):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(k, 0.4), n)
    proba[::3] *= 1.0 - off  # some rows miss 1 by a little
    proba = proba.astype(dtype)
    return proba, [proba[:, j].copy() for j in range(k)]


@pytest.mark.parametrize("k", [2, 3, 7, 8, 9, 10, 16, 17, 63, 100, 128])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("off", [0.0, 1e-7])
def test_fused_validation_is_bit_for_bit_check_probabilities(k, dtype, off):
    from calaudit.errors import Location
    from calaudit.predictions.validation import check_probabilities

    proba, columns = _columns(3000, k, dtype, seed=k, off=off)
    got = kernel.fused_probabilities(columns, row_sum_tolerance=1e-3)
    want = check_probabilities(np.ascontiguousarray(proba, dtype=np.float64), location=Location(),
                               row_sum_tolerance=1e-3)
    assert got is not None
    assert np.array_equal(got[0], want.proba) and got[1] == want.max_row_sum_deviation


@pytest.mark.parametrize("case", ["nan", "negative", "above_one", "over_tolerance", "too_many_classes"])
def test_fused_validation_leaves_every_unusual_batch_to_the_ordinary_path(case):
    k = 129 if case == "too_many_classes" else 4
    proba, columns = _columns(50, k, np.float64)
    if case == "nan":
        columns[1][7] = np.nan
    elif case == "negative":
        columns[0][3] = -1e-12  # the ordinary path clips it and counts it
    elif case == "above_one":
        columns[2][9] = 1.0 + 1e-12
    elif case == "over_tolerance":
        columns[0][5] += 0.01
    assert kernel.fused_probabilities(columns, row_sum_tolerance=1e-3) is None


def test_a_scan_gives_the_same_batches_with_and_without_the_fused_path(tmp_path, monkeypatch):
    import pandas as pd

    from calaudit.engine.scan import open_prediction_dataset

    proba, _ = _columns(700, 5, np.float32, off=1e-7)
    frame = pd.DataFrame(proba, columns=[f"prob_c{j}" for j in range(5)])
    frame.insert(0, "label", np.random.default_rng(1).integers(0, 5, 700))
    frame.to_parquet(tmp_path / "p.parquet", row_group_size=128)
    compiled = []
    fused_probabilities = kernel.fused_probabilities
    monkeypatch.setattr(kernel, "fused_probabilities",
                        lambda *a, **k: compiled.append(fused_probabilities(*a, **k)) or compiled[-1])
    monkeypatch.setenv(kernel.KERNEL_VARIABLE, "numba")  # whatever the size
    fused = list(open_prediction_dataset(tmp_path / "p.parquet", batch_rows=50).batches())
    assert len(compiled) == 17 and all(result is not None for result in compiled)
    monkeypatch.setenv(kernel.KERNEL_VARIABLE, "numpy")
    ordinary = list(open_prediction_dataset(tmp_path / "p.parquet", batch_rows=50).batches())
    assert len(fused) == len(ordinary) == 17  # 128-row groups in batches of 50, 50, 28
    assert compiled[17:] == [None] * 17
    for got, want in zip(fused, ordinary):
        assert np.array_equal(got.y, want.y) and np.array_equal(got.proba, want.proba)
        assert got.max_row_sum_deviation == want.max_row_sum_deviation and got.clipped_values == want.clipped_values
        assert not got.proba.flags.writeable and not got.y.flags.writeable


# ---------------------------------------------------------------- which kernel a run uses


def _write_directory(root: Path, n: int = 1500, k: int = 4) -> None:
    import pandas as pd

    proba, _ = _columns(n, k, np.float32, seed=5)
    frame = pd.DataFrame(proba, columns=[f"prob_c{j}" for j in range(k)])
    frame.insert(0, "label", np.random.default_rng(5).integers(0, k, n))
    root.mkdir()
    frame.iloc[: n // 2].to_parquet(root / "a.parquet", row_group_size=300)
    frame.iloc[n // 2 :].to_parquet(root / "b.parquet", row_group_size=300)


def _streamed(root: Path, out: Path) -> dict:
    from clitools import invoke

    result = invoke("run", str(root), "--json", str(out), "-q", "--bootstrap", "0")
    assert result.exit_code in (0, 1), (result.output, result.exception)
    return json.loads(out.read_text())


def test_a_streamed_run_uses_the_compiled_kernel_by_default_and_numpy_when_asked(tmp_path, monkeypatch):
    """With numba importable (a plain install on a platform with its wheels), a stream
    of at least COMPILED_MIN_ROWS rows runs the compiled kernel; CALAUDIT_KERNEL=numpy
    forces the reference; both give the same figures."""
    _write_directory(tmp_path / "logs")
    monkeypatch.delenv(kernel.KERNEL_VARIABLE, raising=False)
    monkeypatch.setattr(kernel, "COMPILED_MIN_ROWS", 1500)  # this directory's rows: as a large one
    compiled = _streamed(tmp_path / "logs", tmp_path / "a.json")
    monkeypatch.setenv(kernel.KERNEL_VARIABLE, "numpy")
    reference = _streamed(tmp_path / "logs", tmp_path / "b.json")
    assert compiled["execution"]["kernel"] == "numba" and reference["execution"]["kernel"] == "numpy"
    assert compiled["metrics"].keys() == reference["metrics"].keys()
    for name, value in reference["metrics"].items():
        assert compiled["metrics"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    monkeypatch.delenv(kernel.KERNEL_VARIABLE)
    monkeypatch.setattr(kernel, "COMPILED_MIN_ROWS", 1501)  # one row short: the reference
    assert _streamed(tmp_path / "logs", tmp_path / "c.json")["execution"]["kernel"] == "numpy"


def test_the_cli_and_a_small_streamed_run_never_import_numba(tmp_path):
    """Loading the compiled kernel costs a process ~0.5 s (seconds on a first run):
    neither ``calaudit --help`` nor a stream under COMPILED_MIN_ROWS rows pays it."""
    _write_directory(tmp_path / "logs")
    code = ("import sys, os; os.environ.pop('CALAUDIT_KERNEL', None); import calaudit.cli as c; "
            "print('numba' in sys.modules); "
            f"c.cli.main(args=['run', {str(tmp_path / 'logs')!r}, '--json', {str(tmp_path / 'o.json')!r}, '-q', "
            "'--bootstrap', '0'], standalone_mode=False); "
            "print('numba' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
    assert json.loads((tmp_path / "o.json").read_text())["execution"]["kernel"] == "numpy"


def test_the_plain_install_depends_on_numba_where_numba_publishes_wheels():
    """numba is a dependency of ``pip install calaudit`` (not only of an extra) on the
    platforms with numba and llvmlite wheels, and nowhere else (pip would build LLVM)."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    (numba,) = [r for r in map(Requirement, project["dependencies"]) if r.name == "numba"]
    base = {"platform_python_implementation": "CPython", "python_version": "3.12"}
    for system, machine in (("Linux", "x86_64"), ("Linux", "aarch64"), ("Darwin", "arm64"), ("Windows", "AMD64")):
        assert numba.marker.evaluate({**base, "platform_system": system, "platform_machine": machine}), machine
    for system, machine in (("Darwin", "x86_64"), ("Linux", "ppc64le"), ("Linux", "s390x")):
        assert not numba.marker.evaluate({**base, "platform_system": system, "platform_machine": machine}), machine
    linux = {**base, "platform_system": "Linux", "platform_machine": "x86_64"}
    assert not numba.marker.evaluate({**linux, "platform_python_implementation": "PyPy"})
    assert numba.marker.evaluate({**linux, "python_version": "3.11"})
    assert project["optional-dependencies"]["fast"] == []  # kept: "calaudit[fast]" still installs
