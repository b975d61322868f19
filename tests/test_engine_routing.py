"""Review routing in a streamed audit (calaudit.engine.routing_bins): exact counts per
fine confidence bin, the in-memory decision code on bin-boundary candidates.

The references are independent of the module: the in-memory routing
(:func:`calaudit.decisions.routing.route`, itself checked against a brute-force loop in
tests/test_routing.py) on the rows, or on the rows with each confidence snapped down to
the lowest confidence of its bin (pandas); bins checked by comparisons with the edges;
the AURC's interval against the in-memory AURC of arrangements within the bins.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from calaudit.decisions.routing import route
from calaudit.engine import routing_bins
from calaudit.engine.routing_bins import RoutingHistogram, routing_edges, streamed_routing
from calaudit.stats.metrics import TopLabel
import onnx_graphs as graphs
import stream_routing_simulation as simulation
from calaudit.loaders.table import load_prediction_file
from clitools import error_line, invoke
from streamcheck import assert_streamed_routing

TARGETS = (0.8, 0.9, 0.95, 0.99)


def ok(*args):
    result = invoke(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def saturated(rng: np.random.Generator, n: int, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of large logits: most top confidences above 0.999, many above 0.99999,
    labels right more often where the margin is larger."""
    logits = rng.normal(size=(n, k)) * rng.uniform(2.0, 12.0, size=(n, 1))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    top = proba.argmax(axis=1)
    wrong = rng.random(n) < 0.04 + 0.3 * (1.0 - proba.max(axis=1))
    y = np.where(wrong, (top + rng.integers(1, k, size=n)) % k, top)
    return y, proba


def on_the_grid(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary predictions whose confidences are multiples of 2**-14 (rounded
    probabilities), crowded near 1, some exactly 1 and some 0.5."""
    steps = np.concatenate((rng.integers(2**13, 2**14 + 1, n // 2), 2**14 - rng.integers(0, 130, n - n // 2)))
    p = steps / 2**14
    positive = rng.random(n) < 0.5
    proba = np.column_stack((np.where(positive, 1 - p, p), np.where(positive, p, 1 - p)))
    right = rng.random(n) < p ** 3
    y = np.where(right, proba.argmax(axis=1), 1 - proba.argmax(axis=1))
    return y, proba


def histogram(y, proba) -> RoutingHistogram:
    counts = RoutingHistogram()
    counts.add(y, proba)
    return counts


def snapped(confidence: np.ndarray) -> np.ndarray:
    """Each confidence replaced by the lowest confidence of its bin (right-closed bins
    of :func:`routing_edges`), with pandas, not the module."""
    bins = np.digitize(confidence, routing_edges(), right=True)
    return pd.Series(confidence).groupby(bins).transform("min").to_numpy()


# ------------------------------------------------------------------ the bins


def test_the_bins_are_the_equal_width_grid_refined_on_a_log_scale_near_1():
    edges = routing_edges()
    assert edges[0] == 0.0 and edges[-1] == 1.0 and np.all(np.diff(edges) > 0)
    assert np.isin(np.arange(2**14 + 1) / 2**14, edges).all()  # every equal-width edge
    assert edges[-2] == np.nextafter(1.0, 0.0)  # confidence 1 alone in the last bin
    below = edges[edges <= 1 - 2**-7]
    np.testing.assert_array_equal(below, np.arange(below.size) / 2**14)  # no other edge below 0.9921875
    # Above it, consecutive values of 1 - c are at most 2**(1/64) apart, up to the
    # rounding of 1 - u to a double (1e-5 of u while u > 2**-36; closer to 1, doubles
    # themselves run out: their spacing there is 2**-53).
    gaps = 1.0 - edges[(edges >= 1 - 2**-7) & (edges <= 1 - 2**-36)]
    assert np.max(gaps[:-1] / gaps[1:]) <= 2 ** (1 / 64) * (1 + 1e-5)
    assert gaps.size >= (36 - 7) * 64
    # The steps of an octave: 2**(-j/64) to 21 significant bits.
    steps = np.array(routing_bins._octave_steps()) / 2**20
    np.testing.assert_allclose(steps, 2.0 ** (-np.arange(64) / 64), rtol=2**-20, atol=0)


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_each_row_lands_in_its_right_closed_bin_and_the_bins_hold_what_their_rows_say(monkeypatch, kernel):
    monkeypatch.setenv("CALAUDIT_KERNEL", kernel)
    rng = np.random.default_rng(5)
    y, proba = saturated(rng, 3000)
    edges = routing_edges()
    # Rows exactly on edges (equal-width and log), exactly 1, two-way ties at 0.5, float32 values.
    on_edges = rng.choice(edges[edges >= 0.5], 400)
    proba = np.vstack((proba, np.column_stack((on_edges, 1 - on_edges, 0 * on_edges, 0 * on_edges)),
                       [[1.0, 0, 0, 0], [0.5, 0.5, 0, 0]],
                       proba[:300].astype(np.float32).astype(np.float64)))
    y = np.concatenate((y, rng.integers(0, 4, 400), [0, 1], y[:300]))
    counts = histogram(y, proba)
    top = TopLabel.of(y, proba)
    c = top.confidence
    # The bin of each row by comparisons alone: edges[b] < c <= edges[b + 1] (bin 0 holds 0).
    b = np.array([int(np.count_nonzero(edges < value)) - 1 for value in c])
    b = np.maximum(b, 0)
    assert np.all((edges[b] < c) | (b == 0)) and np.all(c <= edges[b + 1])
    frame = pd.DataFrame({"bin": b, "c": c, "right": top.correct.astype(int)}).groupby("bin")
    np.testing.assert_array_equal(np.flatnonzero(counts.count), frame.size().index.to_numpy())
    np.testing.assert_array_equal(counts.count[counts.count > 0], frame.size().to_numpy())
    np.testing.assert_array_equal(counts.right[counts.count > 0], frame["right"].sum().to_numpy())
    np.testing.assert_array_equal(counts.low[counts.count > 0], frame["c"].min().to_numpy())
    np.testing.assert_array_equal(counts.high[counts.count > 0], frame["c"].max().to_numpy())
    assert counts.n_rows == len(y) and counts.count[-1] == np.count_nonzero(c == 1.0) > 0


# ------------------------------------------------------------------ equal to in memory


@pytest.mark.parametrize("seed", range(4))
def test_on_the_2_14_grid_the_streamed_routing_is_the_in_memory_routing(seed):
    y, proba = on_the_grid(np.random.default_rng(seed), 6000)
    counts = histogram(y, proba)
    top = TopLabel.of(y, proba)
    streamed, execution = streamed_routing(counts, TARGETS)
    memory = route(top.confidence, top.correct, TARGETS)
    assert streamed == memory  # thresholds, counts, p-values, starts, texts and the risk-coverage curve
    assert json.dumps(streamed.to_dict()) == json.dumps(memory.to_dict())
    assert execution["bins_with_several_confidences"] == 0
    assert execution["aurc_bounds"] == [memory.risk_coverage.aurc] * 2
    assert sum(target.achievable for target in streamed.targets) >= 2  # a real comparison


@pytest.mark.parametrize("seed", range(4))
def test_on_any_data_it_is_the_in_memory_routing_with_one_candidate_per_bin(seed):
    y, proba = saturated(np.random.default_rng(seed), 8000)
    top = TopLabel.of(y, proba)
    counts = histogram(y, proba)
    streamed, execution = streamed_routing(counts, TARGETS)
    # The in-memory routing of the rows, each confidence snapped down to its bin's lowest.
    assert streamed == route(snapped(top.confidence), top.correct, TARGETS)
    assert execution["bins_with_several_confidences"] > 100  # many rows share bins near 1
    for target in streamed.targets:
        if target.achievable:  # a real threshold: the rows at or above it, exactly
            inside = top.confidence >= target.threshold
            assert target.threshold in top.confidence
            assert (target.fast_track_n, round(target.fast_track_accuracy * target.fast_track_n)) == (
                int(inside.sum()), int(top.correct[inside].sum()))


def test_the_log_bins_resolve_a_saturated_top_that_equal_width_bins_cannot():
    """Most rows above 1 - 2**-14, where one equal-width bin would hold them all: the
    log bins still find a 99% threshold inside that bin, near the in-memory one."""
    rng = np.random.default_rng(11)
    n = 20000
    u = 10.0 ** rng.uniform(-9, -3, n)  # 1 - c
    confidence = 1.0 - u
    correct = (rng.random(n) < np.where(u < 1e-6, 0.999, 0.95)).astype(int)
    counts = RoutingHistogram()
    counts.add_top(confidence, correct)
    streamed = streamed_routing(counts, (0.99,))[0].targets[0]
    memory = route(confidence, correct, (0.99,)).targets[0]
    assert memory.achievable and streamed.achievable and streamed.threshold > 1.0 - 2**-14
    # Equal-width bins alone offer one slice above 1 - 2**-14 (98% right): nothing passes.
    width_only = pd.Series(confidence).groupby(np.ceil(confidence * 2**14)).transform("min").to_numpy()
    assert not route(width_only, correct, (0.99,)).targets[0].achievable
    # Within a few bins (1.09% of 1 - c each) of the in-memory threshold.
    assert abs(np.log((1 - streamed.threshold) / (1 - memory.threshold))) < 5 * np.log(2) / 64
    assert abs(streamed.fast_track_n - memory.fast_track_n) < 0.02 * n


# ------------------------------------------------------------------ the AURC's interval


def memory_aurc(confidence, correct) -> float:
    return route(confidence, correct, (0.9,)).risk_coverage.aurc


def test_the_aurc_interval_holds_every_arrangement_within_the_bins_and_its_ends_are_reached():
    rng = np.random.default_rng(2)
    n_bins, per_bin = 40, 12
    base = rng.choice(np.arange(2**13, 2**14 - 128), n_bins, replace=False)  # bins (b, b + 1] / 2**14, below the log bins
    bins = np.repeat(base, per_bin)
    correct = (rng.random(bins.size) < 0.8).astype(int)

    def arranged(position):  # confidences inside each row's bin, ordered by ``position`` in (0, 1)
        return (bins + position) / 2**14

    counts = RoutingHistogram()
    counts.add_top(arranged(rng.uniform(0.01, 0.99, bins.size)), correct)
    low, high = counts.aurc_bounds()
    assert low < high
    for _ in range(20):  # random orders, with random ties inside the bins
        position = rng.integers(1, 5, bins.size) / 5
        assert low - 1e-12 <= memory_aurc(arranged(position), correct) <= high + 1e-12
    # Errors first, tied at the top of each bin, right answers below one by one: the greatest.
    order = np.arange(bins.size) % per_bin / per_bin / 2  # distinct positions below 0.5
    assert memory_aurc(arranged(np.where(correct == 0, 0.9, 0.1 + order)), correct) == pytest.approx(high, abs=1e-13)
    # Right answers first, tied, errors below one by one: the least.
    assert memory_aurc(arranged(np.where(correct == 1, 0.9, 0.1 + order)), correct) == pytest.approx(low, abs=1e-13)
    # The streamed AURC (every bin one tie) lies between.
    streamed = streamed_routing(counts)[0].risk_coverage.aurc
    assert low <= streamed <= high


# ------------------------------------------------------------------ merging


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_partition_merged_in_any_order_gives_the_same_counts(data):
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    n_rows = data.draw(st.integers(1, 120), label="N")
    y, proba = saturated(np.random.default_rng(seed), n_rows)
    n_parts = data.draw(st.integers(1, 5), label="parts")
    part = np.asarray(data.draw(st.lists(st.integers(0, n_parts - 1), min_size=n_rows, max_size=n_rows)))
    pieces = [histogram(y[part == j], proba[part == j]) for j in range(n_parts)]
    pool = list(pieces)
    while len(pool) > 1:  # any merge tree the test picks
        left = pool.pop(data.draw(st.integers(0, len(pool) - 1)))
        right = pool.pop(data.draw(st.integers(0, len(pool) - 1)))
        pool.append(pickle.loads(pickle.dumps(left.merge(right))))  # as a Dask worker sends it
    order = data.draw(st.permutations(range(n_parts)))
    whole = histogram(y, proba)
    for merged in (pool[0], RoutingHistogram.merge_all(pieces[j] for j in order)):
        for name in ("count", "right", "low", "high"):
            np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name), err_msg=name)
    assert streamed_routing(pool[0], TARGETS) == streamed_routing(whole, TARGETS)


# ------------------------------------------------------------------ the guarantee


GUARANTEE_RUNS = 200
#: More misses than this in 600 runs has probability under 1% at a 5% miss rate, and
#: at 10% fewer have probability under 1% (tests/test_routing.py's rule).
GUARANTEE_ALLOWED = int(binom.ppf(0.99, len(simulation.TARGETS) * GUARANTEE_RUNS, 0.05))


def test_the_streamed_guarantee_holds_and_the_simulation_would_catch_a_method_without_it():
    """A saturated model (every confidence above 0.99; tests/stream_routing_simulation.py):
    600 runs of 6,000 rows over targets 93, 95 and 97%."""
    runs = len(simulation.TARGETS) * GUARANTEE_RUNS
    assert binom.cdf(GUARANTEE_ALLOWED, runs, 0.10) <= 0.01
    missed, chosen = simulation.misses(simulation.streamed_threshold, GUARANTEE_RUNS)
    assert missed <= GUARANTEE_ALLOWED
    assert chosen >= 0.8 * runs  # not by refusing to answer
    assert simulation.misses(simulation.naive_streamed_threshold, GUARANTEE_RUNS)[0] > GUARANTEE_ALLOWED


# ------------------------------------------------------------------ through the CLI


def grid_dataset(root: Path, days: int = 3, rows: int = 1500) -> pd.DataFrame:
    """A hive-partitioned dataset (day=...) of on-the-grid binary predictions."""
    rng = np.random.default_rng(0)
    frames = []
    for day in range(days):
        y, proba = on_the_grid(rng, rows)
        frame = pd.DataFrame({"label": np.array(["no", "yes"])[y], "prob_no": proba[:, 0], "prob_yes": proba[:, 1]})
        folder = root / f"day=2026-11-{day + 1:02d}"
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "part-0.parquet", index=False, row_group_size=400)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def routing_lines(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Review routing"))
    end = next(i for i, line in enumerate(lines) if "AURC" in line and i > start)
    return lines[start:end + 1]


def test_stream_and_dask_runs_route_a_hive_dataset_as_the_in_memory_run(tmp_path):
    frame = grid_dataset(tmp_path / "logs")
    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole, index=False)
    targets = ("--target-accuracy", "0.9", "--target-accuracy", "0.97", "--target-accuracy", "0.995")
    memory = ok("run", whole, "--engine", "memory", "--bootstrap", "0", *targets)
    stream = ok("run", tmp_path / "logs", "--batch-rows", "300", "--bootstrap", "0", *targets,
                "--json", tmp_path / "s.json")
    ok("run", whole, "--engine", "memory", "--bootstrap", "0", *targets, "--json", tmp_path / "m.json", "-q")
    streamed, want = json.loads((tmp_path / "s.json").read_text()), json.loads((tmp_path / "m.json").read_text())
    assert streamed["execution"]["engine"] == "stream" and streamed["routing"] == want["routing"]
    assert [t["target"] for t in streamed["routing"]["targets"]] == [0.9, 0.97, 0.995]
    assert sum(t["achievable"] for t in streamed["routing"]["targets"]) >= 2
    assert routing_lines(stream.stdout) == routing_lines(memory.stdout)  # the same words and figures
    execution = streamed["execution"]
    assert execution["routing"]["bins"] == routing_edges().size - 1 and "routing" not in execution["not_streamed"]
    assert "Review thresholds from exact counts in 18,994 confidence bins" in stream.stdout
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster:
        dask = json.loads(ok("run", tmp_path / "logs", "--engine", "dask", "--scheduler", cluster.scheduler_address,
                             "--bootstrap", "0", *targets, "--json", "-").stdout)
    assert dask["execution"]["engine"] == "dask" and dask["execution"]["partitions"] == 3
    assert dask["routing"] == want["routing"] and dask["execution"]["routing"] == execution["routing"]


def test_the_default_targets_and_the_report_of_a_streamed_run(tmp_path):
    grid_dataset(tmp_path / "logs", days=2, rows=800)
    result = ok("run", tmp_path / "logs", "--bootstrap", "0", "--json", tmp_path / "s.json",
                "--report", tmp_path / "r.html")
    data = json.loads((tmp_path / "s.json").read_text())
    assert [t["target"] for t in data["routing"]["targets"]] == [0.9, 0.95, 0.99]
    assert data["execution"]["routing"]["aurc_bounds"] == [data["routing"]["risk_coverage"]["aurc"]] * 2
    assert "Review routing" in result.stdout
    report = (tmp_path / "r.html").read_text()
    assert "Review thresholds come from exact counts in 18,994 confidence bins" in report


def test_temperature_scaled_routing_in_a_stream_comes_from_the_baselines_second_pass(tmp_path):
    grid_dataset(tmp_path / "logs", days=1, rows=50)
    out = tmp_path / "t.json"
    ok("run", tmp_path / "logs", "--baseline", "temperature", "--target-accuracy", "0.9", "--bootstrap", "0",
       "--json", out)
    data = json.loads(out.read_text())
    after = data["routing"]["recalibrated"]
    assert after["scores"] == "temperature-scaled (fitted on a sample, cross-fitted)"
    assert after["n_samples"] == data["n_samples"] and [t["target"] for t in after["targets"]] == [0.9]


def test_a_model_scored_batch_by_batch_routes_as_the_in_memory_run_with_one_candidate_per_bin(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    w, b = graphs.weights(4, 3, seed=2, scale=4.0)  # confident: several rows share bins near 1
    y = np.where(rng.random(300) < 0.9, (x @ w + b).argmax(axis=1), rng.integers(0, 3, 300))
    model = graphs.save(graphs.prob_model(w, b), tmp_path / "m.onnx")
    data = graphs.write_arrays(tmp_path / "data", x, y)
    streamed = json.loads(ok("run", model, data, "--engine", "stream", "--batch-rows", "64", "--bootstrap", "0",
                             "--target-accuracy", "0.8", "--json", "-").stdout)
    ok("run", model, data, "--engine", "memory", "--bootstrap", "0", "--save-predictions", tmp_path / "p.parquet",
       "-q")
    assert streamed["execution"]["engine"] == "stream" and streamed["execution"]["routing"]["candidates"] > 100
    assert streamed["execution"]["routing"]["bins_with_several_confidences"] > 0
    assert streamed["routing"]["targets"][0]["achievable"]
    assert_streamed_routing(streamed, load_prediction_file(tmp_path / "p.parquet"))
