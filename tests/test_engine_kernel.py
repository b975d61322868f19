"""The compiled kernel (numba) gives the numpy reference's statistics; the reference
stays what runs without numba or with CALAUDIT_KERNEL=numpy."""

from __future__ import annotations

from dataclasses import fields

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


def test_without_numba_the_reference_runs_and_asking_for_numba_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(kernel, "_compiled", lambda: None)
    monkeypatch.delenv(kernel.KERNEL_VARIABLE, raising=False)
    assert kernel.kernel_name() == "numpy"
    monkeypatch.setenv(kernel.KERNEL_VARIABLE, "numba")
    with pytest.raises(UsageError, match="calaudit\\[fast\\]"):
        kernel.kernel_name()


def test_the_inputs_are_only_read():
    y, proba = _data(300, 5, seed=3)
    y.setflags(write=False)
    proba.setflags(write=False)
    fused_statistics(y, proba, n_bins=15, fine_bins=2**14)
