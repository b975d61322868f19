"""The human noise floor on a stream and on Dask (engine/human_floor.py; issue 22,
section 3, on production logs): each row's redraws are seeded by its file and position,
so the streamed floor equals the in-memory floor of the same file, in any batching and
any Dask partitioning; shuffled rows draw other redraws, so they agree within the
simulation error only."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import invoke

from calaudit.engine.batch import Batch
from calaudit.engine.human_stream import HumanObserver, HumanReading, HumanSettings
from calaudit.engine.row_hash import file_label, position_keys
from calaudit.human.noise_floor import noise_floor
from calaudit.human.split import hard_rows

NAMES = ("cat", "dog", "fox")
PARTS = ("all", "hard", "easy")


def crowd(n: int, seed: int, votes=(3, 4, 5, 7)):
    """Probabilities and vote counts, with a varying number of votes per item."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.full(3, 0.6), size=n)
    counts = rng.multinomial(rng.choice(votes, size=n), truth)
    logits = 2.5 * np.log(np.maximum(truth, 0.02)) + rng.normal(0, 0.5, size=(n, 3))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    return proba / proba.sum(axis=1, keepdims=True), counts


def table(proba, counts) -> pd.DataFrame:
    data = {"label": np.asarray(NAMES, dtype=object)[counts.argmax(axis=1)]}
    data.update({f"prob_{c}": proba[:, i] for i, c in enumerate(NAMES)})
    data.update({f"votes_{c}": counts[:, i] for i, c in enumerate(NAMES)})
    return pd.DataFrame(data)


def run_json(path, *args) -> dict:
    result = invoke("run", path, "--json", "-", "-q", "--bootstrap", "0", *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def floors(data: dict) -> dict:
    human = data["human"]
    return {"all": human["noise_floor"], "hard": human["hard"]["noise_floor"], "easy": human["easy"]["noise_floor"]}


def assert_same_floor(found: dict, expected: dict) -> None:
    """Every part's floor equal to 1e-9 (values and ranges), the same simulations, rows
    and vote depth."""
    for part in PARTS:
        a, b = found[part], expected[part]
        assert a is not None and b is not None, part
        for key in ("simulations", "rows", "votes_per_item", "seed", "level"):
            assert a[key] == b[key], (part, key)
        assert a["metrics"].keys() == b["metrics"].keys(), part
        for name, value in b["metrics"].items():
            for end in ("value", "low", "high"):
                assert a["metrics"][name][end] == pytest.approx(value[end], abs=1e-9), (part, name, end)


def as_json(found: dict) -> dict:
    return {part: floor.to_dict() for part, floor in found.items()}


@pytest.mark.parametrize("split", ["70/30", "median"])
def test_a_streamed_csv_has_the_in_memory_floor_with_tiny_batches(tmp_path, split):
    """The floor was null on a stream. Now: the in-memory floor of the same file, to
    1e-9, on every row and on the hard and easy parts, batches of 7 rows; with
    ``--hard-split median`` the parts come from the second pass."""
    proba, counts = crowd(400, seed=1)
    path = tmp_path / "p.csv"
    table(proba, counts).to_csv(path, index=False)
    memory = run_json(path, "--engine", "memory", "--hard-split", split)
    streamed = run_json(path, "--engine", "stream", "--batch-rows", "7", "--hard-split", split)
    assert streamed["execution"]["engine"] == "stream"
    assert_same_floor(floors(streamed), floors(memory))
    assert floors(streamed)["hard"]["rows"] + floors(streamed)["easy"]["rows"] == 400
    assert any("noise floor (200 simulations" in line for line in streamed["execution"]["human"]["exact"])
    if split == "median":
        assert streamed["execution"]["human"]["passes"] == 2


def test_a_single_parquet_file_streamed_has_the_in_memory_floor_of_its_rows(tmp_path):
    """One file's rows are keyed by their positions alone, streamed or in memory: a
    Parquet file streamed has the floor of the same rows in memory under another name
    (two models' files with the same votes get the same floor)."""
    proba, counts = crowd(150, seed=3)
    path, other = tmp_path / "p.parquet", tmp_path / "vendor-b.csv"
    table(proba, counts).to_parquet(path, index=False, row_group_size=40)
    table(proba[:, ::-1], counts).to_csv(other, index=False)  # another model, the same votes
    memory = run_json(other, "--engine", "memory")
    assert_same_floor(floors(run_json(path, "--engine", "stream", "--batch-rows", "16")), floors(memory))


def test_the_interval_with_annotator_noise_is_the_same_in_any_batching(tmp_path):
    """The vote redraws behind the streamed interval with annotator noise are seeded per
    row, as the floor's are (they were seeded by each batch's first row, so the interval
    moved with --batch-rows)."""
    proba, counts = crowd(300, seed=5)
    path = tmp_path / "p.csv"
    table(proba, counts).to_csv(path, index=False)
    found = [json.loads(invoke("run", path, "--json", "-", "-q", "--engine", "stream", "--batch-rows", size,
                               "--bootstrap", "200").stdout)["human"] for size in ("7", "64")]
    noisy = [human["intervals_with_annotator_noise"]["metrics"] for human in found]
    assert noisy[0].keys() == noisy[1].keys() and noisy[0]
    for name, interval in noisy[0].items():
        for end in ("low", "high"):
            assert noisy[1][name][end] == pytest.approx(interval[end], abs=1e-9), (name, end)
    for name, shift in found[0]["annotator_noise_shift"].items():
        assert found[1]["annotator_noise_shift"][name] == pytest.approx(shift, abs=1e-9), name


def test_shuffled_rows_give_the_floor_within_the_simulation_error(tmp_path):
    """A shuffled file pairs rows with other redraws (they are seeded by position): the
    floor moves by simulation error only, and equals the in-memory floor of the
    shuffled file exactly."""
    proba, counts = crowd(600, seed=2)
    frame = table(proba, counts)
    original, shuffled = tmp_path / "p.csv", tmp_path / "shuffled.csv"
    frame.to_csv(original, index=False)
    frame.sample(frac=1.0, random_state=3).to_csv(shuffled, index=False)
    memory = floors(run_json(original, "--engine", "memory"))
    streamed = floors(run_json(shuffled, "--engine", "stream", "--batch-rows", "13"))
    assert_same_floor(streamed, floors(run_json(shuffled, "--engine", "memory")))
    moved = 0
    for part in PARTS:
        runs = memory[part]["simulations"]
        for name, value in memory[part]["metrics"].items():
            other = streamed[part]["metrics"][name]
            spread = (value["high"] - value["low"]) / 3.92  # one simulation's sd (a near-normal mean of rows)
            error = spread * np.sqrt(2.0 / runs)  # two independent means of `runs` simulations
            assert abs(other["value"] - value["value"]) <= 4.5 * error + 1e-12, (part, name)
            moved += other["value"] != value["value"]
    assert moved > 0  # other redraws, not the same ones


def hive(root: Path, frame: pd.DataFrame, cuts=(130, 260, 333)) -> list[tuple[Path, slice]]:
    edges = [0, *cuts, len(frame)]
    files = []
    for i, (a, b) in enumerate(zip(edges, edges[1:])):
        folder = root / f"day=2026-11-{min(i, 2) + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{i}.parquet"
        frame.iloc[a:b].to_parquet(path, index=False, row_group_size=40)
        files.append((path, slice(a, b)))
    return files


def test_dask_and_the_stream_on_a_hive_dataset_give_the_in_memory_floor(tmp_path):
    """On a hive dataset (4 files, row groups of 40) the stream with batches of 16 and
    Dask (one task per file or row group) give the floor that the in-memory
    simulation gives when each row is keyed by its file and position."""
    from distributed import LocalCluster

    proba, counts = crowd(420, seed=4)
    files = hive(tmp_path / "logs", table(proba, counts))
    stream = floors(run_json(tmp_path / "logs", "--engine", "stream", "--batch-rows", "16"))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster:
        dask_run = run_json(tmp_path / "logs", "--engine", "dask", "--scheduler", cluster.scheduler_address,
                            "--batch-rows", "16")
    assert dask_run["execution"]["engine"] == "dask" and dask_run["execution"]["partitions"] >= 4
    keys = np.concatenate([position_keys(file_label(str(path), str(tmp_path / "logs")),
                                         np.arange(rows.stop - rows.start)) for path, rows in files])
    hard, _ = hard_rows(counts / counts.sum(axis=1, keepdims=True), "70/30")
    expected = as_json(noise_floor(counts, seed=0, groups={"hard": hard, "easy": ~hard}, keys=keys))
    assert_same_floor(stream, expected)
    assert_same_floor(floors(dask_run), expected)


# --------------------------------------------------------------------------- the observer


def observe(proba, counts, size: int, *, budget: float, start: int = 0, threshold=0.611) -> HumanObserver:
    reading = HumanReading("votes", tuple(f"v{k}" for k in range(3)), 0.01)
    settings = HumanSettings(reading, n_bins=10, seed=5, threshold=threshold, root=None, noise=False,
                             floor_budget=budget)
    observer = HumanObserver(settings)
    y = proba.argmax(axis=1)
    for first in range(0, proba.shape[0], size):
        part = slice(first, first + size)
        observer.add(Batch(y[part], proba[part], "logs.parquet", 0, start + first,
                           columns={f"v{k}": counts[part, k] for k in range(3)}))
    return observer


def test_the_stream_drops_simulations_as_rows_arrive_and_ends_with_the_in_memory_number():
    """Above the budget the in-memory floor runs fewer simulations; a stream cannot know
    its rows in advance, so it drops simulations as its load grows (keeping sums that
    miss no row) and a merge keeps what both sides hold: the same number, and the same
    floor, as the in-memory run on all the rows."""
    from calaudit.human.noise_floor import MIN_SIMULATIONS, floor_load, floor_simulations

    proba, counts = crowd(900, seed=6)
    load = floor_load(counts.sum(axis=1))
    budget = 60.0 * load  # 60 simulations of all the rows; the first batches could afford 200
    assert floor_simulations(load, budget=budget) == 60 > MIN_SIMULATIONS
    hard, _ = hard_rows(counts / counts.sum(axis=1, keepdims=True), "0.611")
    expected = as_json(noise_floor(counts, seed=5, groups={"hard": hard, "easy": ~hard}, budget=budget))
    assert expected["all"]["simulations"] == 60
    whole = observe(proba, counts, 7, budget=budget)
    assert whole.floor.runs == 60
    assert_same_floor(as_json(whole.floor.floors()), expected)
    # Two partitions (as Dask has them), each affording more simulations on its own.
    left = observe(proba[:250], counts[:250], 11, budget=budget)
    right = observe(proba[250:], counts[250:], 50, budget=budget, start=250)
    assert left.floor.runs > right.floor.runs > 60
    merged = right.merge(left)
    assert merged.floor.runs == 60
    assert_same_floor(as_json(merged.floor.floors()), expected)


def test_soft_labels_stream_without_a_floor_and_say_why(tmp_path):
    proba, counts = crowd(200, seed=7)
    frame = table(proba, counts).drop(columns=[f"votes_{c}" for c in NAMES])
    shares = counts / counts.sum(axis=1, keepdims=True)
    for i, name in enumerate(NAMES):
        frame[f"soft_{name}"] = shares[:, i]
    path = tmp_path / "soft.csv"
    frame.to_csv(path, index=False)
    streamed = run_json(path, "--engine", "stream", "--batch-rows", "9")
    memory = run_json(path, "--engine", "memory")
    assert floors(streamed) == floors(memory) == {"all": None, "hard": None, "easy": None}
    assert streamed["human"]["notes"] == memory["human"]["notes"]
    assert any("no noise floor" in note for note in streamed["human"]["notes"])


# --------------------------------------------------------------------------- what people read


def test_the_terminal_and_the_gate_read_a_streamed_figure_against_its_floor(tmp_path):
    """End to end on a streamed run: the terminal's sentence and a gate on
    ``human_tvd - noise_floor`` (it failed with "no noise floor" before)."""
    proba, counts = crowd(500, seed=8)
    path = tmp_path / "p.csv"
    table(proba, counts).to_csv(path, index=False)
    data = run_json(path, "--engine", "stream", "--batch-rows", "64")
    tvd, floor = data["human"]["metrics"]["human_tvd"], data["human"]["noise_floor"]["metrics"]["human_tvd"]["value"]
    shown = invoke("run", path, "--engine", "stream", "--bootstrap", "0")
    assert shown.exit_code == 0, shown.output
    assert f"Read against it: human_tvd {tvd:.4f}, where a model that knew the crowd's split would show" in shown.stdout
    assert f"{floor:.4f}" in shown.stdout
    excess = tvd - floor
    passed = invoke("run", path, "--engine", "stream", "--bootstrap", "0", "-q",
                    "--fail-if", f"human_tvd - noise_floor > {excess + 0.01}")
    assert passed.exit_code == 0, passed.output
    failed = invoke("run", path, "--engine", "stream", "--bootstrap", "0", "-q",
                    "--fail-if", f"human_tvd - noise_floor > {excess - 0.01}")
    assert failed.exit_code == 1, failed.output
    assert "human_tvd - noise_floor = " in failed.stderr and "has no noise floor" not in failed.stderr


# --------------------------------------------------------------------------- many votes


def test_rows_with_many_votes_are_redrawn_class_by_class_at_the_binomials_expectation():
    """Above MANY_VOTES a row is redrawn from the normal approximation of each class's
    binomial (a per-vote draw would cost its count; counts reach 1e9): with two classes
    the row's TVD is |X/n - p|, X ~ Binomial(n, p), whose mean and spread over the
    simulations come out of the binomial pmf; at 1e9 votes the floor is about 1e-5 and
    computed at once."""
    from scipy import stats

    from calaudit.human.noise_floor import MANY_VOTES

    rng = np.random.default_rng(9)
    n = rng.choice([MANY_VOTES + 1, 3000, 20000], size=300)
    first = rng.binomial(n, rng.uniform(0.02, 0.98, size=300))
    counts = np.column_stack([first, n - first])
    row_mean, row_var = np.empty(300), np.empty(300)
    for i, (votes, k) in enumerate(zip(n, first)):
        x = np.arange(votes + 1)
        weight = stats.binom.pmf(x, votes, k / votes)
        deviation = np.abs(x / votes - k / votes)
        row_mean[i] = weight @ deviation
        row_var[i] = weight @ (deviation - row_mean[i]) ** 2
    expected, spread = row_mean.mean(), np.sqrt(row_var.sum()) / 300
    floor = noise_floor(counts, seed=2, simulations=200)["all"].metrics["human_tvd"]
    assert abs(floor.value - expected) < 4 * spread / np.sqrt(200)
    assert abs((floor.high - floor.low) / 3.92 - spread) < 0.15 * spread
    # A row's draws are its own: the sums of two batches of different widths add up to
    # the sums of all the rows.
    from calaudit.human.noise_floor import floor_sums

    wide = np.column_stack([counts, np.zeros(300, dtype=np.int64)])
    wide[200:, 2] = rng.integers(1, 900, size=100)  # three voted classes in the second batch only
    keys = position_keys("", np.arange(300))
    whole = floor_sums(wide, keys, seed=4, simulations=30)
    halves = (floor_sums(wide[:150], keys[:150], seed=4, simulations=30)
              + floor_sums(wide[150:], keys[150:], seed=4, simulations=30))
    assert np.allclose(whole, halves, rtol=1e-12, atol=1e-9)
    huge = noise_floor(np.array([[10**9 - 3 * 10**8, 3 * 10**8], [10**9, 0]]), seed=0, simulations=50)["all"]
    tvd = huge.metrics["human_tvd"].value
    assert 0.5 * np.sqrt(2 * 0.21 / (np.pi * 1e9)) * 0.5 < tvd < 0.5 * np.sqrt(2 * 0.21 / (np.pi * 1e9)) * 1.5
