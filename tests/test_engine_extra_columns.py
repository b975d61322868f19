"""Extra columns in streamed batches (group values, ids, votes), stable per-row hashes,
and capability observers merged on Dask: the base every streamed capability builds on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calaudit.engine.csv_scan import open_csv_predictions
from calaudit.engine.row_hash import file_label, mix, position_keys, text_keys, uniform
from calaudit.engine.scan import open_prediction_dataset
from calaudit.errors import InvalidInputError

PROBS = ["p0", "p1", "p2"]


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(3), n)
    return pd.DataFrame({"label": rng.integers(0, 3, n), **{c: p[:, i] for i, c in enumerate(PROBS)},
                         "id": [f"x{i:05d}" for i in range(n)], "g": rng.integers(0, 4, n),
                         "t": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC")})


def hive(root: Path, data: pd.DataFrame, cut: int) -> Path:
    for region, part in (("eu", data[:cut]), ("us", data[cut:])):
        (root / f"region={region}").mkdir(parents=True)
        part.to_parquet(root / f"region={region}" / "part-0.parquet", row_group_size=50)
    return root


def gathered(batches, name):
    return np.concatenate([b.column(name) for b in batches])


def test_parquet_extra_columns_follow_their_rows_across_files_batches_and_hive_keys(tmp_path):
    data = frame(300)
    ds = open_prediction_dataset(hive(tmp_path / "ds", data, 120), prob_cols=PROBS, batch_rows=32,
                                 extra_cols=["id", "g", "region"])
    batches = list(ds.batches())
    assert list(gathered(batches, "id")) == list(data["id"])
    assert np.array_equal(gathered(batches, "g"), data["g"].to_numpy())
    assert list(gathered(batches, "region")) == ["eu"] * 120 + ["us"] * 180
    rows = np.concatenate([b.file_rows() for b in batches])
    assert np.array_equal(rows, np.r_[np.arange(120), np.arange(180)])
    assert all(not b.column("id").flags.writeable for b in batches)
    with pytest.raises(KeyError, match="nope"):
        batches[0].column("nope")


def test_a_time_filter_keeps_each_rows_extra_values_and_file_position(tmp_path):
    data = frame(300)
    ds = open_prediction_dataset(hive(tmp_path / "ds", data, 120), prob_cols=PROBS, batch_rows=32,
                                 extra_cols=["id"], time_col="t", since="2026-01-02T05:00", until="2026-01-09")
    batches = list(ds.batches())
    kept = data[(data["t"] >= pd.Timestamp("2026-01-02T05:00", tz="UTC")) & (data["t"] < pd.Timestamp("2026-01-09", tz="UTC"))]
    assert list(gathered(batches, "id")) == list(kept["id"])
    positions = np.concatenate([b.file_rows() for b in batches])
    expected = np.where(kept.index < 120, kept.index, kept.index - 120)
    assert np.array_equal(positions, expected)


def test_csv_extra_columns_are_the_text_the_file_holds(tmp_path):
    data = frame(250)
    data["id"] = [f"{i:04d}" for i in range(250)]  # leading zeros stay
    data.loc[7, "id"] = ""
    path = tmp_path / "f.csv"
    data.to_csv(path, index=False)
    scan = open_csv_predictions(path, prob_cols=PROBS, batch_rows=64, extra_cols=["id", "g"])
    batches = list(scan.batches())
    ids = gathered(batches, "id")
    assert ids[0] == "0000" and ids[7] is None and ids[249] == "0249"
    assert np.array_equal(np.concatenate([b.file_rows() for b in batches]), np.arange(250))
    with pytest.raises(InvalidInputError, match=r"f\.csv: no column nope"):
        open_csv_predictions(path, prob_cols=PROBS, extra_cols=["nope"])


def test_a_missing_extra_column_names_the_file(tmp_path):
    data = frame(100)
    root = hive(tmp_path / "ds", data, 50)
    data[50:].drop(columns="g").to_parquet(root / "region=us" / "part-0.parquet")
    with pytest.raises(InvalidInputError, match=r"region=us.part-0\.parquet: no column g; expected it in every file"):
        open_prediction_dataset(root, prob_cols=PROBS, extra_cols=["g"])


def test_text_keys_read_ids_as_text():
    assert np.array_equal(text_keys(np.array([7, 8, 9])), text_keys(np.array(["7", "8", "9"], dtype=object)))
    keys = text_keys(np.array(["a", None, "a", "b"], dtype=object))
    assert keys[0] == keys[2] != keys[3] and keys[1] == text_keys(np.array([""], dtype=object))[0]


def test_file_labels_are_relative_to_the_dataset():
    assert file_label("/data/ds/region=eu/part-0.parquet", "/data/ds") == "region=eu/part-0.parquet"
    assert file_label("/data/one.parquet", None) == "one.parquet"


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 400), st.integers(0, 2**63), st.lists(st.integers(1, 50), min_size=1, max_size=6))
def test_position_keys_do_not_depend_on_how_rows_are_split(n, seed, cuts):
    rows = np.arange(n)
    whole = uniform(position_keys("a.parquet", rows), seed)
    edges = sorted({0, n, *[c % n for c in cuts]})
    pieces = np.concatenate([uniform(position_keys("a.parquet", rows[a:b]), seed) for a, b in zip(edges, edges[1:])])
    assert np.array_equal(whole, pieces)
    assert ((whole >= 0) & (whole < 1)).all()


def test_uniform_numbers_look_uniform_and_salts_are_independent():
    keys = text_keys(np.array([f"id{i}" for i in range(40000)], dtype=object))
    a, b = uniform(keys, 1), uniform(keys, 2)
    from scipy import stats

    assert stats.kstest(a, "uniform").pvalue > 1e-4
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.03
    assert mix(keys, 5).dtype == np.uint64 and len(np.unique(mix(keys, 5))) == len(keys)


class RowCounter:
    """A capability observer: the rows and the sum of ``g`` per region."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.sums: dict[str, float] = {}

    def observe(self, batches):
        for batch in batches:
            regions, codes = np.unique(batch.column("region").astype(str), return_inverse=True)
            counts = np.bincount(codes, minlength=len(regions))
            sums = np.bincount(codes, weights=batch.column("g"), minlength=len(regions))
            for region, count, total in zip(regions, counts, sums):
                self.counts[region] = self.counts.get(region, 0) + int(count)
                self.sums[region] = self.sums.get(region, 0.0) + float(total)
            yield batch

    def merge(self, other: RowCounter) -> RowCounter:
        merged = RowCounter()
        for source in (self, other):
            for region, count in source.counts.items():
                merged.counts[region] = merged.counts.get(region, 0) + count
                merged.sums[region] = merged.sums.get(region, 0.0) + source.sums[region]
        return merged


def test_observers_run_on_every_dask_partition_and_merge(tmp_path):
    import distributed
    from calaudit.engine.distributed import dask_statistics

    data = frame(400)
    ds = open_prediction_dataset(hive(tmp_path / "ds", data, 170), prob_cols=PROBS, batch_rows=32,
                                 extra_cols=["region", "g"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as lc:
        statistics, info = dask_statistics(ds, n_bins=10, scheduler=lc.scheduler_address, partition_rows=50,
                                           observers={"count": RowCounter})
    counter = info["observed"]["count"]
    assert info["partitions"] > 2
    assert counter.counts == {"eu": 170, "us": 230}
    assert counter.sums["eu"] == pytest.approx(float(data["g"][:170].sum()))
    assert statistics.n_rows == 400
