"""Segments on a stream and on Dask, equal to the in-memory run; segments from one pass.

``--group-by`` streamed keeps per-level sums keyed by the group value
(calaudit/engine/segment_observer.py): every figure equals the in-memory one to 1e-9
but ``ece_equal_mass``, which comes within its stated bound; the in-memory run builds
every segment's figures from one pass over the rows (no per-segment metrics call).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clitools import error_line, invoke

PROBS = ["prob_c0", "prob_c1", "prob_c2"]


def frame(n: int = 1200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(3, 0.6), n)
    channel = rng.choice(["web", "app", "NA", "store"], n, p=[0.4, 0.3, 0.2, 0.1])
    y = np.array([rng.choice(3, p=row) for row in p])
    bad = channel == "app"  # a segment whose confidence lies: its labels are shuffled
    y[bad] = rng.integers(0, 3, int(bad.sum()))
    data = pd.DataFrame({"label": [f"c{v}" for v in y], **{c: p[:, i] for i, c in enumerate(PROBS)},
                         "channel": channel.astype(object), "tier": rng.choice(["1", "2", "3.0", "3"], n)})
    data.loc[rng.random(n) < 0.05, "channel"] = ""  # blanks: the "(missing)" segment
    data.loc[data.index[:3], "channel"] = "  "
    return data


def ok(*args):
    result = invoke(*args)
    assert result.exit_code == 0, (result.output, result.stderr)
    return json.loads(result.stdout)


def by_segment(data: dict) -> dict:
    return {(s["column"], s["value"]): s for s in data["groups"] if s["found_by"] == "group-by"}


def assert_same_segments(streamed: dict, memory: dict) -> None:
    got, want = by_segment(streamed), by_segment(memory)
    assert got.keys() == want.keys()
    bounds = streamed["execution"]["segments"]["ece_equal_mass_bound"]
    for key, segment in want.items():
        mine = got[key]
        assert mine["n"] == segment["n"] and mine["too_small"] == segment["too_small"], key
        if segment["too_small"]:
            continue
        assert mine["metrics"].keys() == segment["metrics"].keys()
        for name, value in segment["metrics"].items():
            if name == "ece_equal_mass":  # from each level's fine histogram, within the stated bound
                assert abs(mine["metrics"][name] - value) <= bounds[key[0]] + 1e-12, key
            else:
                assert mine["metrics"][name] == pytest.approx(value, abs=1e-9), (key, name)
        for name in ("rest_ece", "p_value", "p_adjusted", "mean_confidence"):
            assert mine[name] == pytest.approx(segment[name], abs=1e-9), (key, name)
        assert mine["flagged"] == segment["flagged"]
        for name, interval in segment["intervals"].items():
            if name != "ece_equal_mass":  # the same draws from the same sums
                assert mine["intervals"][name]["low"] == pytest.approx(interval["low"], abs=1e-9), (key, name)
                assert mine["intervals"][name]["high"] == pytest.approx(interval["high"], abs=1e-9), (key, name)


ARGS = ("--group-by", "channel", "--group-by", "tier", "--bootstrap", "200", "--min-group-size", "40", "--json", "-")


def test_streamed_group_by_equals_memory_with_tiny_batches_and_shuffled_rows(tmp_path):
    data = frame()
    data.to_csv(tmp_path / "p.csv", index=False)
    data.sample(frac=1.0, random_state=1).to_csv(tmp_path / "shuffled.csv", index=False)
    memory = ok("run", tmp_path / "p.csv", "--engine", "memory", *ARGS)
    streamed = ok("run", tmp_path / "shuffled.csv", "--engine", "stream", "--batch-rows", "7", *ARGS)
    assert streamed["execution"]["engine"] == "stream" and streamed["execution"]["batches"] > 100
    keys = by_segment(memory).keys()
    # Text as written ("NA" is a channel), blanks missing, "3.0" and "3" one tier as in memory.
    assert ("channel", "NA") in keys and ("channel", "(missing)") in keys and ("tier", "3") in keys
    assert ("tier", "3.0") not in keys
    assert by_segment(memory)[("channel", "app")]["flagged"]
    assert_same_segments(streamed, memory)
    segments = streamed["execution"]["segments"]
    assert segments["approximate"] == ["ece_equal_mass"] and "--max-levels" in segments["bounded_by"]
    assert not any("segment" in s and "search" not in s for s in streamed["execution"]["not_streamed"])


def write_hive(root: Path, data: pd.DataFrame) -> None:
    for region in ("eu", "us"):
        part = data[data["region"] == region].drop(columns="region")
        half = len(part) // 2
        for i, piece in enumerate((part.iloc[:half], part.iloc[half:])):
            folder = root / f"region={region}"
            folder.mkdir(parents=True, exist_ok=True)
            piece.to_parquet(folder / f"part-{i}.parquet", row_group_size=97, index=False)


def test_group_by_on_dask_and_on_a_stream_of_a_hive_dataset_equal_memory(tmp_path):
    from distributed import LocalCluster

    data = frame(900, seed=5)
    data["channel"] = data["channel"].replace({"": None, "  ": None})
    data["tier"] = data["tier"].astype(float)  # a numeric column in Parquet: 3.0 reads "3"
    data["region"] = np.where(np.arange(900) % 3 == 0, "eu", "us")
    write_hive(tmp_path / "logs", data)
    # The in-memory run of the same rows, in the dataset's order, the hive key a column.
    ordered = pd.concat([data[data["region"] == r] for r in ("eu", "us")])
    ordered.to_parquet(tmp_path / "all.parquet", index=False)
    args = ("--group-by", "region", "--group-by", "channel", "--group-by", "tier", "--bootstrap", "200",
            "--min-group-size", "30", "--json", "-")
    memory = ok("run", tmp_path / "all.parquet", "--engine", "memory", *args)
    streamed = ok("run", tmp_path / "logs", "--engine", "stream", "--batch-rows", "13", *args)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        dask = ok("run", tmp_path / "logs", "--engine", "dask", "--scheduler", cluster.scheduler_address, *args)
    assert dask["execution"]["engine"] == "dask" and dask["execution"]["partitions"] > 2
    assert {k for k in by_segment(memory) if k[0] == "region"} == {("region", "eu"), ("region", "us")}
    assert ("tier", "3") in by_segment(memory)
    assert_same_segments(streamed, memory)
    assert_same_segments(dask, memory)


def test_the_level_cap_and_a_missing_column_are_one_line_errors(tmp_path):
    data = frame(300)
    data["id"] = [f"x{i}" for i in range(300)]
    data.to_csv(tmp_path / "p.csv", index=False)
    streamed = error_line(invoke("run", tmp_path / "p.csv", "--engine", "stream", "--group-by", "id",
                                 "--max-levels", "50"), 2)
    memory = error_line(invoke("run", tmp_path / "p.csv", "--engine", "memory", "--group-by", "id",
                               "--max-levels", "50"), 2)
    for line in (streamed, memory):
        assert "--group-by id:" in line and "(--max-levels)" in line
    line = error_line(invoke("run", tmp_path / "p.csv", "--engine", "stream", "--group-by", "nope"), 3)
    assert "p.csv" in line and "nope" in line
    (tmp_path / "logs" / "region=eu").mkdir(parents=True)
    data.drop(columns="channel").to_parquet(tmp_path / "logs" / "region=eu" / "a.parquet")
    line = error_line(invoke("run", tmp_path / "logs", "--group-by", "channel"), 3)
    assert "a.parquet" in line and "channel" in line
    assert "true class" in error_line(invoke("run", tmp_path / "p.csv", "--engine", "stream", "--group-by",
                                             "label"), 2)


def test_every_segments_figures_come_from_one_pass_not_a_metrics_call_per_segment(monkeypatch):
    from calaudit.decisions import segments
    from calaudit.predictions import Predictions
    from calaudit.stats import bootstrap, metrics

    def refused(*args, **kwargs):
        raise AssertionError("a per-segment pass over the rows")

    data = frame(2000)
    y = data["label"].str[1:].astype(int).to_numpy()
    predictions = Predictions.from_arrays(y, data[PROBS].to_numpy())
    groups = {"g": np.array([f"s{i % 40}" for i in range(2000)], dtype=object)}
    monkeypatch.setattr(metrics, "compute_metrics", refused)
    monkeypatch.setattr(segments, "compute_metrics", refused, raising=False)
    monkeypatch.setattr(bootstrap, "bootstrap", refused)
    analysis = segments.group_segments(predictions, groups, bootstrap=200, min_group_size=20)
    assert sum(not s.too_small for s in analysis.segments) == 40
    assert all(s.intervals and s.intervals["ece"].low <= s.metrics["ece"] <= s.intervals["ece"].high
               for s in analysis.segments)


@pytest.mark.parametrize("rows", [[3, 1, 0, 2], [2, 1, 3, 1, 1, 4, 6, 2]])
def test_row_by_row_counts_draw_the_multinomial_law(rows):
    from calaudit.decisions.segment_draws import ROWS_PER_GROUP, multinomial_counts

    rows = np.array(rows, dtype=np.float64)
    assert rows.sum() <= ROWS_PER_GROUP * np.count_nonzero(rows)  # the row-by-row draw
    keep = rows > 0
    n = int(rows.sum())
    draws = multinomial_counts(np.random.default_rng(0), n, rows[keep], 20000)
    p = rows[keep] / n
    assert (draws.sum(axis=1) == n).all()
    assert np.all(np.abs(draws.mean(axis=0) - n * p) <= 4 * np.sqrt(n * p * (1 - p) / 20000))
    covariance = n * (np.diag(p) - np.outer(p, p))
    assert np.abs(np.cov(draws, rowvar=False) - covariance).max() <= 0.05 * n
    # Every resampled row is one of the n rows: all counts of one group at once is possible, never more.
    assert draws.max() <= n and draws.min() >= 0


# --- --find-segments ------------------------------------------------------------------


def search_frame(n: int = 1600, seed: int = 4) -> pd.DataFrame:
    """A planted bad pair (mobile & fr), an amount cut at its quartiles, an id column."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(3, 0.5), n)
    y = np.array([rng.choice(3, p=row) for row in p])
    channel = rng.choice(["web", "mobile", "store"], n)
    language = rng.choice(["en", "fr", "de"], n)
    bad = (channel == "mobile") & (language == "fr")
    y[bad] = rng.integers(0, 3, int(bad.sum()))
    amount = np.round(rng.gamma(2.0, 30.0, n), 2)
    amount[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame({"label": [f"c{v}" for v in y], **{c: p[:, i] for i, c in enumerate(PROBS)},
                         "channel": channel, "language": language, "amount": amount,
                         "ticket": [f"T{i:06d}" for i in range(n)]})


def search_of(data: dict) -> tuple[dict, list]:
    (analysis,) = [g for g in data["group_tests"] if g["found_by"] == "search"]
    found = [s for s in data["groups"] if s["found_by"] == "search"]
    return analysis, found


def assert_same_search(streamed: dict, memory: dict) -> None:
    (got, got_segments), (want, want_segments) = search_of(streamed), search_of(memory)
    for key in ("search_rows", "measure_rows", "columns_searched", "columns_skipped", "quartile_cuts",
                "candidates_tested", "candidates_not_tested", "screen_passed", "kept"):
        assert got["details"][key] == want["details"][key], key
    for a, b in zip(got["details"]["kept_on_search_half"], want["details"]["kept_on_search_half"]):
        assert (a["column"], a["value"], a["search_n"]) == (b["column"], b["value"], b["search_n"])
        assert a["search_ece"] == pytest.approx(b["search_ece"], abs=1e-9)
        assert a["search_p_value"] == pytest.approx(b["search_p_value"], abs=1e-9)
    assert [(s["column"], s["value"], s["n"]) for s in got_segments] == \
        [(s["column"], s["value"], s["n"]) for s in want_segments]
    for mine, theirs in zip(got_segments, want_segments):
        for name, value in theirs["metrics"].items():
            if name != "ece_equal_mass":
                assert mine["metrics"][name] == pytest.approx(value, abs=1e-9), name
        for name in ("p_value", "p_adjusted", "rest_ece"):
            assert mine[name] == pytest.approx(theirs[name], abs=1e-9), name
        for name, interval in (theirs["intervals"] or {}).items():
            if name != "ece_equal_mass":
                assert mine["intervals"][name]["low"] == pytest.approx(interval["low"], abs=1e-9), name


def test_streamed_search_equals_memory_whatever_the_batches(tmp_path):
    search_frame().to_csv(tmp_path / "p.csv", index=False)
    args = ("--find-segments", "--bootstrap", "200", "--json", "-")
    memory = ok("run", tmp_path / "p.csv", "--engine", "memory", *args)
    tiny = ok("run", tmp_path / "p.csv", "--engine", "stream", "--batch-rows", "7", *args)
    large = ok("run", tmp_path / "p.csv", "--engine", "stream", "--batch-rows", "1000", *args)
    analysis, found = search_of(memory)
    assert analysis["details"]["columns_skipped_as_ids"] == ["ticket"]
    assert "amount" in analysis["details"]["quartile_cuts"]
    assert found and (found[0]["column"], found[0]["value"]) == ("channel & language", "mobile & fr")
    assert found[0]["flagged"]
    assert_same_search(tiny, memory)
    assert_same_search(large, memory)
    assert tiny["execution"]["segment_search"]["reads"] == 3
    assert "--find-segments" not in " ".join(tiny["execution"]["not_streamed"])


def test_search_halves_are_the_same_in_every_batching_and_in_memory(tmp_path):
    from calaudit.decisions.segments import search_split
    from calaudit.engine.csv_scan import open_csv_predictions
    from calaudit.engine.segment_search import RowKeys

    search_frame(500).to_csv(tmp_path / "p.csv", index=False)
    rows = RowKeys(True, None, seed=11)
    halves = []
    for batch_rows in (7, 64, 500):
        scan = open_csv_predictions(tmp_path / "p.csv", prob_cols=PROBS, batch_rows=batch_rows)
        halves.append(np.concatenate([rows.search(rows.keys(b)) for b in scan.batches()]))
    search_rows, measure_rows = search_split(500, 11)
    assert all(np.array_equal(h, halves[0]) for h in halves)
    assert np.array_equal(np.flatnonzero(halves[0]), search_rows)
    assert np.array_equal(np.flatnonzero(~halves[0]), measure_rows)
    # The split does not follow the rows' order: a sorted file is split evenly along it.
    first, second = halves[0][:250].mean(), halves[0][250:].mean()
    assert 0.35 < first < 0.65 and 0.35 < second < 0.65


def test_streamed_search_on_dask_over_a_hive_dataset_equals_memory_with_the_same_row_keys(tmp_path):
    from distributed import LocalCluster

    from calaudit.decisions.segments import find_segments
    from calaudit.predictions import Predictions
    from calaudit.stats.row_hash import file_label, position_keys

    data = search_frame(1500, seed=6).drop(columns="ticket")
    data["region"] = np.where(np.arange(1500) % 4 == 0, "eu", "us")
    write_hive(tmp_path / "logs", data)
    args = ("--find-segments", "--bootstrap", "200", "--json", "-")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        dask = ok("run", tmp_path / "logs", "--engine", "dask", "--scheduler", cluster.scheduler_address, *args)
    streamed = ok("run", tmp_path / "logs", "--engine", "stream", "--batch-rows", "11", *args)
    assert_same_search(streamed, dask)
    # In memory: the same rows, each keyed by its file and position in it.
    files = sorted((tmp_path / "logs").rglob("*.parquet"))
    parts = [pd.read_parquet(f).assign(region=f.parent.name.split("=")[1]) for f in files]
    keys = np.concatenate([position_keys(file_label(str(f), str(tmp_path / "logs")), np.arange(len(part)))
                           for f, part in zip(files, parts)])
    rows = pd.concat(parts, ignore_index=True)
    predictions = Predictions.from_arrays(rows["label"].str[1:].astype(int).to_numpy(), rows[PROBS].to_numpy())
    columns = {name: rows[name].to_numpy(dtype=object) for name in ("channel", "language", "amount", "region")}
    memory = find_segments(predictions, columns, bootstrap=200, seed=0, row_keys=keys)
    analysis, found = search_of(dask)
    assert analysis["details"]["search_rows"] == memory.details["search_rows"]
    assert analysis["details"]["candidates_tested"] == memory.tested
    assert [(s["column"], s["value"], s["n"]) for s in found] == [(s.column, s.value, s.n) for s in memory.segments]
    for got, want in zip(found, memory.segments):
        assert got["p_value"] == pytest.approx(want.p_value, abs=1e-9)
        assert got["metrics"]["ece"] == pytest.approx(want.metrics["ece"], abs=1e-9)


def test_the_hash_split_search_keeps_its_error_control_on_null_data():
    """Data sets where nothing differs between segments (a calibrated model, segment
    columns drawn independently), rows keyed by text ids. With a screen loose enough
    to keep candidates (alpha 0.9), the kept segments look bad on the search half
    (selected) but their measure-half p-values are what chance gives (uniform: mean
    near 1/2); at alpha 0.05 the search flags a segment in at most 3 of 20 data sets
    (the 99th percentile of Binomial(20, 0.05))."""
    from calaudit.decisions.segments import find_segments
    from calaudit.predictions import Predictions
    from calaudit.stats.row_hash import text_keys

    flagged, search_p, measure_p = 0, [], []
    for seed in range(60):
        rng = np.random.default_rng(100 + seed)
        n = 1200
        p = rng.dirichlet(np.full(3, 0.7), n)
        y = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1).clip(max=2)
        predictions = Predictions.from_arrays(y, p)
        columns = {"a": rng.choice(["x", "y", "z", "w"], n).astype(object),
                   "b": rng.choice(["u", "v", "t"], n).astype(object)}
        keys = text_keys(np.array([f"id-{seed}-{i}" for i in range(n)], dtype=object))
        if seed < 20:
            strict = find_segments(predictions, columns, bootstrap=0, seed=seed, row_keys=keys, min_group_size=40)
            flagged += any(s.flagged for s in strict.segments)
        loose = find_segments(predictions, columns, bootstrap=0, seed=seed, row_keys=keys, min_group_size=40,
                              alpha=0.9)
        search_p += [k["search_p_value"] for k in loose.details["kept_on_search_half"]]
        measure_p += [s.p_value for s in loose.segments if s.p_value is not None]
    assert flagged <= 3
    assert len(measure_p) >= 30
    assert np.mean(search_p) < 0.3  # chosen for looking bad where they were chosen
    # Where measured, like any segment named in advance: rejected at 5% no more often than 5% (plus
    # the noise of a few dozen), and p-values not piled below 1/2 (the test is, if anything, conservative).
    measure_p = np.array(measure_p)
    assert np.mean(measure_p <= 0.05) <= 0.12 and np.mean(measure_p) > 0.4


def test_group_by_sums_past_the_memory_limit_are_refused_before_reading(tmp_path):
    frame(200).to_csv(tmp_path / "p.csv", index=False)
    line = error_line(invoke("run", tmp_path / "p.csv", "--engine", "stream", "--group-by", "channel",
                             "--memory-limit", "1MB"), 2)
    assert "--group-by" in line and "--max-levels" in line and "--memory-limit" in line
    assert invoke("run", tmp_path / "p.csv", "--engine", "stream", "--group-by", "channel", "--max-levels", "10",
                  "--memory-limit", "1MB", "-q").exit_code == 0


def test_class_sums_of_many_levels_and_classes_equal_the_dense_ones(monkeypatch):
    """Many levels x classes: each block of rows sums over its own cells only; the
    same sums as one dense bincount per block."""
    from calaudit.decisions import segment_stats

    rng = np.random.default_rng(1)
    n, k, levels = 3000, 50, 300
    p = rng.dirichlet(np.ones(k), n)
    y, codes = rng.integers(0, k, n), rng.integers(0, levels, n)
    dense = segment_stats._class_sums(codes, levels, y, p, 15)
    monkeypatch.setattr(segment_stats, "_BLOCK_CELLS", 1 << 12)  # small blocks: the sparse path
    sparse = segment_stats._class_sums(codes, levels, y, p, 15)
    assert np.array_equal(dense[0], sparse[0])
    np.testing.assert_allclose(dense[1], sparse[1], rtol=0, atol=1e-12)
    hits = np.zeros((levels, k))
    np.add.at(hits, (codes, y), 1)
    assert np.array_equal(dense[0][..., 1].sum(axis=2), hits)  # the true class's cells, per level
