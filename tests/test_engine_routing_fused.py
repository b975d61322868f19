"""The review-routing histogram filled inside the compiled statistics kernel
(``Accumulator(..., routing=histogram)``, ``stream_statistics(..., routing=...)``).

The reference is :meth:`RoutingHistogram.add` under ``CALAUDIT_KERNEL=numpy`` (numpy's
argmax and ``searchsorted``, checked against comparisons with the edges in
tests/test_engine_routing.py): the fused counts must equal it exactly, integer counts
and the lowest and highest confidence per bin, on rows that sit on bin edges, next to
them, at exactly 1 and at exactly 1/K, with tied maxima.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calaudit.engine import kernel as kernel_module
from calaudit.engine.kernel import Accumulator
from calaudit.engine.routing_bins import RoutingHistogram, routing_edges
from calaudit.engine.stream import stream_statistics
from clitools import invoke

pytest.importorskip("numba")  # a dependency of the plain install; the fused pass is numba's

EDGES = routing_edges()


def numpy_reference(batches: list[tuple[np.ndarray, np.ndarray]]) -> RoutingHistogram:
    reference = RoutingHistogram()
    with mock.patch.dict(os.environ, {"CALAUDIT_KERNEL": "numpy"}):
        for y, proba in batches:
            reference.add(y, proba)
    return reference


def assert_same(fused: RoutingHistogram, reference: RoutingHistogram) -> None:
    np.testing.assert_array_equal(fused.count, reference.count)
    np.testing.assert_array_equal(fused.right, reference.right)
    np.testing.assert_array_equal(fused.low, reference.low)  # exactly: min of the same doubles
    np.testing.assert_array_equal(fused.high, reference.high)


@st.composite
def confidence(draw: st.DrawFn, n_classes: int) -> float:
    kind = draw(st.sampled_from(["edge", "below", "above", "one", "uniform", "inverse_k"]))
    if kind == "one":
        return 1.0
    if kind == "inverse_k":
        return 1.0 / n_classes
    if kind == "uniform":
        return draw(st.floats(1.0 / n_classes, 1.0))
    edge = float(EDGES[draw(st.integers(0, EDGES.shape[0] - 1))])
    if kind == "below":
        edge = float(np.nextafter(edge, 0.0))
    elif kind == "above":
        edge = float(np.nextafter(edge, 2.0))
    return min(max(edge, 1.0 / n_classes), 1.0)


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of one K: each row's top confidence at column ``j``, another column tied
    with it or not, the rest sharing what is left (so none exceeds it)."""
    n_classes = draw(st.integers(2, 12))
    out = []
    for _ in range(draw(st.integers(1, 4))):
        n_rows = draw(st.integers(0, 30))
        proba = np.zeros((n_rows, n_classes))
        for i in range(n_rows):
            c = draw(confidence(n_classes))
            rest = (1.0 - c) / (n_classes - 1)
            proba[i, :] = min(rest, c)
            proba[i, draw(st.integers(0, n_classes - 1))] = c
            if draw(st.booleans()):  # a tie of maxima: the first is the top label
                proba[i, draw(st.integers(0, n_classes - 1))] = c
        y = np.array([draw(st.integers(0, n_classes - 1)) for _ in range(n_rows)], dtype=np.int64)
        out.append((y, proba))
    return out


def fused(parts: list[tuple[np.ndarray, np.ndarray]]) -> RoutingHistogram:
    histogram = RoutingHistogram()
    with mock.patch.dict(os.environ, {"CALAUDIT_KERNEL": "numba"}), \
            mock.patch.object(RoutingHistogram, "add", side_effect=AssertionError("a second pass")):
        accumulator = Accumulator(n_bins=15, fine_bins=64, routing=histogram)
        assert accumulator.kernel == "numba"
        for y, proba in parts:
            accumulator.add(y, proba)
        accumulator.result()
    return histogram


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batches())
def test_the_kernel_fills_the_routing_bins_exactly_as_the_numpy_reference(parts):
    assert_same(fused(parts), numpy_reference(parts))


def test_edges_one_and_one_over_k_on_many_rows_and_the_statistics_are_unchanged():
    rng = np.random.default_rng(11)
    n_classes = 10
    edges = EDGES[EDGES >= 1.0 / n_classes]
    c = np.concatenate((rng.choice(edges, 4000), np.nextafter(rng.choice(edges, 2000), 0.0),
                        np.ones(300), np.full(300, 1.0 / n_classes), 1.0 - rng.exponential(1e-6, 2000).clip(0, 0.5)))
    proba = np.tile(((1.0 - c) / (n_classes - 1))[:, None], (1, n_classes))
    proba[np.arange(c.size), rng.integers(0, n_classes, c.size)] = c
    y = rng.integers(0, n_classes, c.size)
    parts = [(y[:5000], proba[:5000]), (y[5000:], proba[5000:])]
    reference = numpy_reference(parts)
    histogram = fused(parts)
    assert_same(histogram, reference)
    assert histogram.count[-1] == np.count_nonzero(c == 1.0) >= 300 and histogram.n_rows == c.size
    # The statistics themselves are those of the kernel without routing.
    with mock.patch.dict(os.environ, {"CALAUDIT_KERNEL": "numba"}):
        alone, _ = stream_statistics([SimpleNamespace(y=y, proba=proba)], n_bins=15,
                                     routing=RoutingHistogram())
        plain = kernel_module.fused_statistics(y, proba, n_bins=15, fine_bins=alone.fine_bins)
    np.testing.assert_array_equal(alone.top_count, plain.top_count)
    np.testing.assert_array_equal(alone.fine_count, plain.fine_count)


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_stream_statistics_adds_to_the_histogram_it_is_given(kernel):
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.full(5, 0.3), 2000)
    y = rng.integers(0, 5, 2000)
    parts = [(y[:700], proba[:700]), (y[700:], proba[700:])]
    histogram = RoutingHistogram()
    with mock.patch.dict(os.environ, {"CALAUDIT_KERNEL": kernel}):
        statistics, info = stream_statistics(
            [SimpleNamespace(y=a, proba=b) for a, b in parts], n_bins=15, routing=histogram)
    assert info["kernel"] == kernel and statistics.n_rows == histogram.n_rows == 2000
    assert_same(histogram, numpy_reference(parts))


def test_a_streamed_cli_run_makes_no_second_routing_pass(tmp_path, monkeypatch):
    rng = np.random.default_rng(8)
    proba = rng.dirichlet(np.full(3, 0.5), 3000)
    frame = pd.DataFrame({"label": rng.integers(0, 3, 3000), **{f"prob_{k}": proba[:, k] for k in range(3)}})
    frame.to_parquet(tmp_path / "logs.parquet", index=False)
    args = ("run", tmp_path / "logs.parquet", "--engine", "stream", "--batch-rows", "500", "--bootstrap", "0", "-q")
    monkeypatch.setenv("CALAUDIT_KERNEL", "numpy")
    want = invoke(*args, "--json", tmp_path / "numpy.json")
    assert want.exit_code == 0, want.output
    monkeypatch.setenv("CALAUDIT_KERNEL", "numba")
    monkeypatch.setattr(RoutingHistogram, "add", lambda *a, **k: (_ for _ in ()).throw(AssertionError("second pass")))
    got = invoke(*args, "--json", tmp_path / "numba.json")
    assert got.exit_code == 0, (got.output, got.exception)
    numba_run, numpy_run = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("numba", "numpy"))
    assert numba_run["execution"]["kernel"] == "numba" and numpy_run["execution"]["kernel"] == "numpy"
    assert numba_run["routing"] == numpy_run["routing"]
    assert numba_run["execution"]["routing"] == numpy_run["execution"]["routing"]
