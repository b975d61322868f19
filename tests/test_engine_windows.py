"""calaudit.engine.windows: calibration per time window of a streamed dataset, the time
column of calaudit.engine.scan, and the windows' place in the reports."""

from __future__ import annotations

import pickle
from datetime import date, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calaudit.engine.scan import open_prediction_dataset
from calaudit.engine.statistics import StreamStatistics
from calaudit.engine.stream import stream_statistics
from calaudit.engine.windows import (
    MIN_WINDOW_ROWS,
    WINDOW_METRICS,
    WindowStatistics,
    window_change,
    window_extras,
    window_results,
)
from calaudit.engine.times import format_instant, parse_instant, parse_window, read_times
from calaudit.errors import InvalidInputError, UsageError
from calaudit.loaders.table import load_prediction_file
from calaudit.stats.metrics import compute_metrics

CLASSES = ["cat", "dog", "bird"]
DAY = np.timedelta64(1, "D").astype("timedelta64[ns]").astype(np.int64)
HOUR = DAY // 24
START = np.datetime64("2026-11-01T00:00:00", "ns").astype(np.int64)


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def predictions(rng: np.random.Generator, n: int, skew: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Validated-looking predictions: labels drawn from a sharpened version of the
    probabilities, so accuracy and confidence differ from window to window."""
    proba = rng.dirichlet(np.full(len(CLASSES), 0.6), size=n)
    sharp = proba**skew
    sharp /= sharp.sum(axis=1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > np.cumsum(sharp, axis=1)).sum(axis=1)
    return y.astype(np.intp), proba


def in_memory(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    values = compute_metrics(y, proba, n_bins=n_bins).values
    return {"accuracy": values["accuracy"], "ece": values["ece"], "confidence_gap": values["confidence_gap"],
            "mean_confidence": values["accuracy"] + values["confidence_gap"]}


def assert_windows_match(results: list[dict], times: np.ndarray, y: np.ndarray, proba: np.ndarray,
                         size_ns: int, n_bins: int = 15) -> None:
    """Every window's figures equal the in-memory audit of the rows whose time is in it."""
    index = np.floor_divide(times, size_ns)
    assert [r["start"] for r in results] == [format_instant(int(k) * size_ns) for k in np.unique(index)]
    for result, key in zip(results, np.unique(index)):
        rows = index == key
        assert result["rows"] == int(rows.sum())
        assert result["end"] == format_instant((int(key) + 1) * size_ns)
        expected = in_memory(y[rows], proba[rows], n_bins)
        for name, value in expected.items():
            assert result[name] == pytest.approx(value, abs=1e-9), name


# ------------------------------------------------------------------ window sizes and bounds


@pytest.mark.parametrize("text, hours", [("1D", 24), ("7D", 168), ("30D", 720), ("12H", 12), ("1W", 168),
                                         ("2w", 336), (" 6h ", 6)])
def test_window_sizes_are_hours_days_or_weeks(text, hours):
    assert parse_window(text) == np.timedelta64(hours, "h")
    assert parse_window(text).dtype == np.dtype("timedelta64[ns]")


@pytest.mark.parametrize("text", ["5M", "0D", "1.5D", "D", "7 days", "", "-1D", "P7D", "100000000D"])
def test_any_other_window_is_a_usage_error_naming_it(text):
    with pytest.raises(UsageError) as excinfo:
        parse_window(text)
    message = one_line(excinfo)
    assert message.startswith(f"--window is {text!r}; expected a whole number of hours, days or weeks")
    assert "7D" in message


@pytest.mark.parametrize("text", ["999999D", "5300W", "9999999H"])
def test_a_window_longer_than_a_century_is_a_usage_error(text):
    with pytest.raises(UsageError, match=f"--window is '{text}'; expected at most 36,525 days"):
        parse_window(text)


def test_bounds_are_utc_whatever_they_are_given_as():
    expected = np.datetime64("2026-11-02T08:30:00", "ns")
    assert parse_instant("2026-11-02T10:30:00+02:00") == expected
    assert parse_instant("2026-11-02T08:30:00Z") == expected
    assert parse_instant("2026-11-02T08:30:00") == expected  # no offset: UTC
    assert parse_instant(datetime(2026, 11, 2, 8, 30)) == expected  # naive: UTC
    assert parse_instant(datetime(2026, 11, 2, 3, 30, tzinfo=timezone(timedelta(hours=-5)))) == expected
    assert parse_instant(date(2026, 11, 2)) == np.datetime64("2026-11-02", "ns")
    assert parse_instant(np.datetime64("2026-11-02T08:30")) == expected
    assert parse_instant(None) is None


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", 12, np.datetime64("NaT"), date(3000, 1, 1)])
def test_a_bound_that_is_no_time_is_a_usage_error_naming_the_option(value):
    with pytest.raises(UsageError) as excinfo:
        parse_instant(value, option="--until")
    assert one_line(excinfo).startswith("--until is ")


# ------------------------------------------------------------------ the accumulator


def batches_of(times, y, proba, cuts):
    for start, stop in pairwise(cuts):
        yield times[start:stop], y[start:stop], proba[start:stop]


@pytest.mark.parametrize("ordered", [True, False])
def test_each_window_equals_the_in_memory_audit_of_its_rows(ordered):
    rng = np.random.default_rng(0)
    n = 3000
    times = START + np.sort(rng.integers(0, 9 * DAY, size=n))
    if not ordered:
        times = rng.permutation(times)
    y, proba = predictions(rng, n)
    # Batches of uneven sizes that cross window boundaries.
    cuts = np.concatenate(([0], np.sort(rng.choice(np.arange(1, n), size=17, replace=False)), [n]))
    acc = WindowStatistics(parse_window("2D"), n_bins=10)
    for part in batches_of(times, y, proba, cuts):
        acc.add(*part)
    results = window_results(acc, resamples=0)
    assert_windows_match(results, times, y, proba, 2 * DAY, n_bins=10)
    assert sum(r["rows"] for r in results) == n
    assert all(r["intervals"] is None for r in results)


def test_windows_are_aligned_to_the_utc_epoch_also_before_1970():
    times = np.array([-1, 0, DAY - 1, DAY, -DAY], dtype=np.int64)
    y, proba = predictions(np.random.default_rng(1), 5)
    acc = WindowStatistics(parse_window("1D"))
    acc.add(times, y, proba)
    results = window_results(acc, resamples=0, min_rows=1)
    assert [(r["start"], r["rows"]) for r in results] == [
        ("1969-12-31T00:00:00Z", 2), ("1970-01-01T00:00:00Z", 2), ("1970-01-02T00:00:00Z", 1)]
    # 7-day windows start on Thursdays, as 1970-01-01 did.
    acc = WindowStatistics(parse_window("1W"))
    acc.add(np.array([START], dtype=np.int64), y[:1], proba[:1])
    start = window_results(acc, resamples=0)[0]["start"]
    assert start == "2026-10-29T00:00:00Z" and date(2026, 10, 29).weekday() == 3


def test_any_partition_and_merge_order_gives_the_same_windows():
    rng = np.random.default_rng(2)
    n = 1200
    times = START + rng.integers(0, 5 * DAY, size=n)
    y, proba = predictions(rng, n)
    whole = WindowStatistics(parse_window("12H"))
    whole.add(times, y, proba)
    parts = []
    for start, stop in ((0, 400), (400, 401), (401, 1200)):
        part = WindowStatistics(parse_window("12H"))
        part.add(times[start:stop], y[start:stop], proba[start:stop])
        parts.append(part)
    for order in ((0, 1, 2), (2, 0, 1)):
        merged = WindowStatistics.merge_all(parts[i] for i in order)
        a, b = window_results(whole, resamples=0), window_results(merged, resamples=0)
        assert [r["start"] for r in a] == [r["start"] for r in b]
        for left, right in zip(a, b):
            assert left["rows"] == right["rows"]
            for name in ("accuracy", "ece", "mean_confidence"):
                assert left[name] == pytest.approx(right[name], abs=1e-12)
    # A merge leaves its inputs as they were.
    assert sum(len(p) for p in parts) >= len(whole) and parts[1].n_rows == 1


def test_window_statistics_pickle_for_a_distributed_reduction():
    rng = np.random.default_rng(3)
    times = START + rng.integers(0, 3 * DAY, size=200)
    y, proba = predictions(rng, 200)
    acc = WindowStatistics(parse_window("1D"))
    acc.add(times, y, proba)
    copy = pickle.loads(pickle.dumps(acc))
    assert window_results(copy, resamples=0) == window_results(acc, resamples=0)


def test_too_many_windows_is_a_usage_error_before_any_work(monkeypatch):
    rng = np.random.default_rng(4)
    y, proba = predictions(rng, 50)
    acc = WindowStatistics(parse_window("1H"), max_windows=40)
    built = []
    original = StreamStatistics.from_batch.__func__
    monkeypatch.setattr(StreamStatistics, "from_batch",
                        classmethod(lambda cls, *a, **k: built.append(1) or original(cls, *a, **k)))
    acc.add(START + np.arange(30, dtype=np.int64) * HOUR, y[:30], proba[:30])
    built.clear()
    with pytest.raises(UsageError) as excinfo:
        acc.add(START + np.arange(30, 50, dtype=np.int64) * 2 * HOUR, y[30:], proba[30:])
    assert one_line(excinfo).startswith("the rows fall in more than 40 windows of 1H (--window); use a wider window")
    assert len(built) <= 1  # at most the empty statistics that size a window
    assert acc.n_rows == 30  # the batch that overflowed added nothing
    # The cap holds for merged windows too.
    other = WindowStatistics(parse_window("1H"), max_windows=40)
    other.add(START + (100 + np.arange(20, dtype=np.int64)) * HOUR, y[:20], proba[:20])
    with pytest.raises(UsageError):
        WindowStatistics.merge_all([acc, other])


def test_many_classes_lower_the_cap_to_bound_memory():
    rng = np.random.default_rng(5)
    proba = rng.dirichlet(np.ones(400), size=4)
    acc = WindowStatistics(parse_window("1D"), max_bytes=3 * 400 * 15 * 8 * 3)
    with pytest.raises(UsageError, match=r"more than 1 window of 1D \(--window\)"):
        acc.add(START + np.arange(4, dtype=np.int64) * DAY * 2, np.zeros(4, dtype=np.intp), proba)


def test_windows_with_few_rows_are_marked_and_get_no_interval(monkeypatch):
    calls = spy_resample(monkeypatch)
    rng = np.random.default_rng(6)
    times = np.concatenate([np.full(MIN_WINDOW_ROWS, START), np.full(MIN_WINDOW_ROWS - 1, START + DAY)])
    y, proba = predictions(rng, times.size)
    acc = WindowStatistics(parse_window("1D"))
    acc.add(times, y, proba)
    first, second = window_results(acc, resamples=50, seed=3)
    assert not first["too_few_rows"] and set(first["intervals"]) == set(WINDOW_METRICS)
    assert second["too_few_rows"] and second["intervals"] is None
    assert len(calls) == 1 and calls[0]["metrics"] == WINDOW_METRICS and calls[0]["resamples"] == 50


def spy_resample(monkeypatch) -> list[dict]:
    """Record the calls to calaudit.engine.resample.stream_intervals (which still runs)."""
    from calaudit.engine import resample

    calls: list[dict] = []
    real = resample.stream_intervals

    def stream_intervals(stats, **options):
        calls.append({"rows": stats.n_rows, **options, "metrics": tuple(options["metrics"])})
        return real(stats, **options)

    monkeypatch.setattr(resample, "stream_intervals", stream_intervals)
    return calls


def test_intervals_come_from_each_windows_statistics_with_its_own_seed(monkeypatch):
    calls = spy_resample(monkeypatch)
    rng = np.random.default_rng(7)
    times = START + np.repeat(np.arange(3, dtype=np.int64) * DAY, 40)
    y, proba = predictions(rng, times.size)
    acc = WindowStatistics(parse_window("1D"))
    acc.add(times, y, proba)
    results = window_results(acc, resamples=200, seed=11, level=0.9)
    assert [c["rows"] for c in calls] == [40, 40, 40]
    assert len({c["seed"] for c in calls}) == 3  # independent draws per window
    for result, call in zip(results, calls):
        assert call["reference"] == {name: result[name] for name in WINDOW_METRICS}
        assert call["level"] == 0.9
        for name in WINDOW_METRICS:
            assert result["intervals"][name]["low"] <= result[name] <= result["intervals"][name]["high"]
    # A window's seed depends on the window, not on which other windows hold rows.
    seeds = [call["seed"] for call in calls]
    calls.clear()
    alone = WindowStatistics(parse_window("1D"))
    alone.add(times[40:80], y[40:80], proba[40:80])
    window_results(alone, resamples=200, seed=11, level=0.9)
    assert calls[0]["seed"] == seeds[1]


def test_the_latest_window_is_compared_with_the_earlier_rows(monkeypatch):
    spy_resample(monkeypatch)
    rng = np.random.default_rng(8)
    early_y, early_p = predictions(rng, 600, skew=1.0)  # calibrated by construction
    late_p = rng.dirichlet(np.full(3, 0.3), size=300)
    late_y = rng.integers(0, 3, size=300)  # confident and right a third of the time
    times = np.concatenate([START + rng.integers(0, 6 * DAY, 600), START + 6 * DAY + rng.integers(0, DAY, 300)])
    acc = WindowStatistics(parse_window("1D"))
    acc.add(times, np.concatenate([early_y, late_y]), np.concatenate([early_p, late_p]))
    change = window_change(acc, resamples=100)
    assert change["direction"] == "worse"
    assert change["latest"]["rows"] == 300 and change["earlier"]["rows"] == 600
    assert change["latest"]["start"] == "2026-11-07T00:00:00Z" and change["earlier"]["windows"] == 6
    assert change["earlier"]["ece"] == pytest.approx(in_memory(early_y, early_p)["ece"], abs=1e-9)
    # The test draws its own simulations: the verdict does not depend on the bootstrap.
    assert window_change(acc, resamples=0)["direction"] == "worse"
    assert window_change(acc, resamples=0)["test"] == change["test"]
    few_before = WindowStatistics(parse_window("1D"))
    few_before.add(times[590:], np.concatenate([early_y, late_y])[590:], np.concatenate([early_p, late_p])[590:])
    assert window_change(few_before, resamples=100)["direction"] == "unclear"  # 10 earlier rows: too few
    single = WindowStatistics(parse_window("1D"))
    single.add(times[600:], late_y, late_p)
    assert window_change(single, resamples=0) is None  # nothing earlier to compare with


# ------------------------------------------------------------------ reading times


@pytest.mark.parametrize("arrow_type", [pa.timestamp("s"), pa.timestamp("ms", "UTC"), pa.timestamp("us", "Asia/Tokyo"),
                                        pa.timestamp("ns", "America/New_York")])
def test_timestamps_of_any_unit_and_zone_are_read_as_utc_instants(arrow_type):
    instants = np.array(["2026-11-02T23:30:00", "1969-07-20T20:17:40", "2026-03-29T01:30:00"], dtype="datetime64[s]")
    array = pa.array(instants.astype(np.int64) * {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[arrow_type.unit],
                     pa.int64()).cast(arrow_type)  # stored values are UTC; a naive column is read as UTC
    times = read_times(array, where=str)
    np.testing.assert_array_equal(times, instants.astype("datetime64[ns]").astype(np.int64))


def test_dates_and_iso_texts_are_read_as_utc():
    expected = np.array(["2026-11-02T00:00", "2026-11-03T00:00"], dtype="datetime64[ns]").astype(np.int64)
    np.testing.assert_array_equal(read_times(pa.array([date(2026, 11, 2), date(2026, 11, 3)]), where=str), expected)
    np.testing.assert_array_equal(read_times(pa.array([date(2026, 11, 2), date(2026, 11, 3)], pa.date64()),
                                             where=str), expected)
    texts = ["2026-11-02", "2026-11-02T10:30:00", " 2026-11-02 10:30:00.25 ", "2026-11-02T10:30:00Z",
             "2026-11-02T12:30:00+02:00", "2026-11-02T05:30:00-0500"]
    got = read_times(pa.array(texts), where=str).view("datetime64[ns]")
    assert [str(t) for t in got] == ["2026-11-02T00:00:00.000000000", "2026-11-02T10:30:00.000000000",
                                     "2026-11-02T10:30:00.250000000"] + ["2026-11-02T10:30:00.000000000"] * 3
    categorical = pa.array(["2026-11-02", "2026-11-03"]).dictionary_encode()
    np.testing.assert_array_equal(read_times(categorical, where=str), expected)


# ------------------------------------------------------------------ datasets with a time column


def frame(rng: np.random.Generator, n: int, start: str, freq: str = "1h") -> pd.DataFrame:
    y, proba = predictions(rng, n)
    data = pd.DataFrame({"label": np.asarray(CLASSES, dtype=object)[y]})
    for k, name in enumerate(CLASSES):
        data[f"prob_{name}"] = proba[:, k]
    data["ts"] = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return data


def utc_ns(series: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch of a tz-aware pandas series."""
    return series.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)


def write(data: pd.DataFrame | pa.Table, path: Path, row_group_size: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def logs(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, pd.DataFrame]:
    """Three files of hourly predictions (one out of time order), 10-row row groups."""
    parts = [frame(rng, 50, "2026-11-01"), frame(rng, 37, "2026-11-03 02:00"), frame(rng, 44, "2026-11-04 15:00")]
    parts[1] = parts[1].sample(frac=1.0, random_state=1).reset_index(drop=True)
    for i, part in enumerate(parts):
        write(part, tmp_path / "logs" / f"part-{i}.parquet")
    return tmp_path / "logs", pd.concat(parts, ignore_index=True)


def expected_arrays(tmp_path: Path, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    whole = write(data, tmp_path / "whole.parquet")
    loaded = load_prediction_file(whole)
    times = utc_ns(data["ts"])
    return times, loaded.y_true, loaded.y_proba


def test_a_windowed_stream_equals_the_in_memory_audit_of_the_rows_in_each_window(tmp_path):
    source, data = logs(tmp_path, np.random.default_rng(10))
    times, y, proba = expected_arrays(tmp_path, data)
    dataset = open_prediction_dataset(source, time_col="ts", batch_rows=7)
    acc = WindowStatistics(parse_window("1D"))
    statistics, _ = stream_statistics(acc.observe(dataset.batches()), n_bins=15)
    assert statistics.n_rows == acc.n_rows == len(data)
    assert_windows_match(window_results(acc, resamples=0), times, y, proba, DAY)


def test_since_and_until_keep_exactly_the_rows_between_them(tmp_path):
    source, data = logs(tmp_path, np.random.default_rng(11))
    times, y, proba = expected_arrays(tmp_path, data)
    since, until = "2026-11-02T05:00:00", "2026-11-04T20:30:00+02:00"
    low, high = (parse_instant(v).astype(np.int64) for v in (since, until))
    dataset = open_prediction_dataset(source, time_col="ts", since=since, until=until, batch_rows=4)
    acc = WindowStatistics(parse_window("12H"))
    statistics, _ = stream_statistics(acc.observe(dataset.batches()), n_bins=15)
    keep = (times >= low) & (times < high)
    assert statistics.n_rows == int(keep.sum()) < len(data)
    whole = compute_metrics(y[keep], proba[keep], n_bins=15).values
    for name in ("accuracy", "ece", "mce", "classwise_ece", "brier", "nll", "confidence_gap"):
        assert statistics.metrics()[name] == pytest.approx(whole[name], abs=1e-9), name
    assert_windows_match(window_results(acc, resamples=0), times[keep], y[keep], proba[keep], DAY // 2)
    kept_times = np.concatenate([b.time for b in open_prediction_dataset(
        source, time_col="ts", since=since, until=until).batches()])
    assert kept_times.min() >= low and kept_times.max() < high


def corrupt_row_group(path: Path, group: int) -> None:
    """Overwrite the probability chunks of one row group (its statistics stay in the footer)."""
    data = bytearray(path.read_bytes())
    for column in (1, 2, 3):
        chunk = pq.read_metadata(path).row_group(group).column(column)
        start = min(offset for offset in (chunk.dictionary_page_offset, chunk.data_page_offset) if offset)
        data[start : start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(data))


def test_since_and_until_are_pushed_down_so_row_groups_outside_are_never_read(tmp_path):
    rng = np.random.default_rng(12)
    data = frame(rng, 60, "2026-11-01", freq="2h")  # 10-row row groups of 20 hours each
    path = write(data, tmp_path / "logs.parquet")
    for group in (0, 1, 5):  # outside [2026-11-02T16:00, 2026-11-04T16:00)
        corrupt_row_group(path, group)
    with pytest.raises(InvalidInputError, match="row group 1 cannot be read"):
        list(open_prediction_dataset(path, time_col="ts").batches())
    dataset = open_prediction_dataset(path, time_col="ts", since="2026-11-02T16:00", until="2026-11-04T16:00",
                                      batch_rows=8)
    assert dataset.n_rows == 30  # row groups 2, 3 and 4 only: an upper bound on the rows read
    batches = list(dataset.batches())
    assert {b.row_group for b in batches} == {2, 3, 4}
    assert sum(b.n_rows for b in batches) == 24


def test_text_times_cannot_be_pruned_but_are_filtered_exactly(tmp_path):
    rng = np.random.default_rng(13)
    data = frame(rng, 40, "2026-11-01", freq="3h")
    data["ts"] = data["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    path = write(data, tmp_path / "logs.parquet")
    dataset = open_prediction_dataset(path, time_col="ts", since="2026-11-02", until=date(2026, 11, 3))
    assert dataset.n_rows == 40  # every row group is read
    assert sum(b.n_rows for b in dataset.batches()) == 8


@pytest.mark.parametrize("kind", ["naive", "tokyo", "text_offsets", "date"])
def test_time_columns_of_every_kind_give_the_same_windows(tmp_path, kind):
    rng = np.random.default_rng(14)
    data = frame(rng, 48, "2026-11-01 00:00", freq="90min")
    instants = data["ts"]
    if kind == "naive":
        data["ts"] = instants.dt.tz_localize(None)
    elif kind == "tokyo":
        data["ts"] = instants.dt.tz_convert("Asia/Tokyo")
    elif kind == "text_offsets":
        local = [t.tz_convert("America/New_York" if i % 2 else "Europe/Paris") for i, t in enumerate(instants)]
        data["ts"] = [t.isoformat() if i % 3 else t.tz_convert(None).isoformat() for i, t in enumerate(local)]
    else:
        data["ts"] = instants.dt.date
        instants = pd.to_datetime(data["ts"]).dt.tz_localize("UTC")
    path = write(data, tmp_path / f"{kind}.parquet")
    times = utc_ns(instants)
    loaded = load_prediction_file(path)
    acc = WindowStatistics(parse_window("1D"))
    for batch in acc.observe(open_prediction_dataset(path, time_col="ts", batch_rows=5).batches()):
        assert batch.time.dtype == np.int64 and not batch.time.flags.writeable
    assert_windows_match(window_results(acc, resamples=0), times, loaded.y_true, loaded.y_proba, DAY)


# ------------------------------------------------------------------ errors


def bad_time_file(tmp_path: Path, value, row: int = 11) -> Path:
    rng = np.random.default_rng(15)
    write(frame(rng, 9, "2026-11-01"), tmp_path / "a.parquet")
    data = frame(rng, 23, "2026-11-01")
    data["ts"] = data["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
    data.loc[row, "ts"] = value
    write(data, tmp_path / "a.parquet", row_group_size=5)
    return tmp_path / "a.parquet"


def scan_error(source, **options) -> str:
    with pytest.raises(InvalidInputError) as excinfo:
        for _ in open_prediction_dataset(source, batch_rows=2, **options).batches():
            pass
    return one_line(excinfo)


# Row 11 (0-based) of a file of 5-row row groups read 2 rows at a time.
WHERE = "row group 3, row 2 (row 12 of the file), column ts"


@pytest.mark.parametrize("value, expected", [
    (None, "no time (null); expected a time on every row (--time-col)"),
    ("   ", "no time (empty text); expected a time on every row (--time-col)"),
    ("02/11/2026", "value '02/11/2026' is not a time we can read; expected an ISO-8601 date or time"),
    ("2026-11-02T25:00:00", "value '2026-11-02T25:00:00' is not a time we can read;"),
    ("3000-01-01", "value '3000-01-01' is not a time we can read;"),
])
def test_a_bad_time_names_file_row_group_row_and_value(tmp_path, value, expected):
    path = bad_time_file(tmp_path, value)
    assert scan_error(path, time_col="ts").startswith(f"{path}: {WHERE}: {expected}")


def test_a_bad_time_among_offsets_and_naive_texts_is_found(tmp_path):
    path = bad_time_file(tmp_path, "soon")
    data = pq.read_table(path).to_pandas()
    data.loc[::2, "ts"] = data.loc[::2, "ts"].where(data.loc[::2, "ts"] == "soon", data.loc[::2, "ts"] + "+01:00")
    write(data, path, row_group_size=5)
    assert scan_error(path, time_col="ts").startswith(f"{path}: {WHERE}: value 'soon' is not a time")


def test_a_timestamp_beyond_what_nanoseconds_hold_is_named(tmp_path):
    table = pq.read_table(write(frame(np.random.default_rng(16), 23, "2026-11-01"), tmp_path / "a.parquet"))
    seconds = table.column("ts").cast(pa.timestamp("s", "UTC")).cast(pa.int64()).to_numpy().copy()
    seconds[11] = 400 * 365 * 86400  # 2369
    table = table.set_column(table.schema.get_field_index("ts"), "ts", pa.array(seconds).cast(pa.timestamp("s")))
    path = write(table, tmp_path / "a.parquet", row_group_size=5)
    assert scan_error(path, time_col="ts").startswith(f"{path}: {WHERE}: value 2369-")


def test_a_bad_probability_after_filtered_rows_names_its_row_in_the_file(tmp_path):
    data = frame(np.random.default_rng(17), 23, "2026-11-01")
    data.loc[11, "prob_dog"] = 1.7
    path = write(data, tmp_path / "a.parquet", row_group_size=5)
    message = scan_error(path, time_col="ts", since="2026-11-01T09:00")  # row 10 (0-based) is the first kept
    assert message.startswith(f"{path}: row group 3, row 2 (row 12 of the file), column prob_dog: value 1.7")


def test_rows_outside_the_bounds_are_never_validated(tmp_path):
    data = frame(np.random.default_rng(18), 23, "2026-11-01")
    data.loc[3, "prob_dog"] = 1.7
    data.loc[4, "label"] = "unicorn"
    path = write(data, tmp_path / "a.parquet", row_group_size=5)
    dataset = open_prediction_dataset(path, time_col="ts", since="2026-11-01T05:00", batch_rows=3)
    assert sum(b.n_rows for b in dataset.batches()) == 18


def test_a_file_without_the_time_column_is_named_at_open(tmp_path):
    rng = np.random.default_rng(19)
    write(frame(rng, 9, "2026-11-01"), tmp_path / "logs" / "a.parquet")
    bad = write(frame(rng, 9, "2026-11-02").drop(columns=["ts"]), tmp_path / "logs" / "b.parquet")
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(tmp_path / "logs", time_col="ts")
    assert one_line(excinfo) == (f"{bad}: no column ts (--time-col); expected the time column in every file of "
                                 "the dataset")


def test_a_time_column_of_numbers_is_refused_at_open(tmp_path):
    data = frame(np.random.default_rng(20), 9, "2026-11-01")
    data["ts"] = np.arange(9)
    path = write(data, tmp_path / "a.parquet")
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(path, time_col="ts")
    assert one_line(excinfo).startswith(f"{path}: column ts (--time-col) holds int64; expected timestamps, dates")


def test_time_options_that_cannot_work_are_usage_errors(tmp_path):
    path = write(frame(np.random.default_rng(21), 9, "2026-11-01"), tmp_path / "a.parquet")
    with pytest.raises(UsageError, match="--since and --until need --time-col"):
        open_prediction_dataset(path, since="2026-11-01")
    with pytest.raises(UsageError, match="is not before --until"):
        open_prediction_dataset(path, time_col="ts", since="2026-11-02", until="2026-11-02")
    with pytest.raises(UsageError, match="--time-col label is also the label"):
        open_prediction_dataset(path, time_col="label")
    with pytest.raises(UsageError, match="--time-col prob_dog is also a probability column"):
        open_prediction_dataset(path, time_col="prob_dog", prob_cols=["prob_*"])
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(path, time_col="ts", since="2027-01-01")
    assert one_line(excinfo).startswith(f"{path}: no row group holds times from 2027-01-01T00:00:00Z to the end "
                                        "in column ts")


def test_the_inputs_are_not_modified(tmp_path):
    rng = np.random.default_rng(22)
    times = START + rng.integers(0, 3 * DAY, size=100)
    y, proba = predictions(rng, 100)
    copies = times.copy(), y.copy(), proba.copy()
    WindowStatistics(parse_window("1D")).add(times, y, proba)
    for before, after in zip(copies, (times, y, proba)):
        np.testing.assert_array_equal(before, after)


def test_window_extras_hold_the_settings_and_the_windows():
    rng = np.random.default_rng(23)
    times = START + rng.integers(0, 3 * DAY, size=90)
    y, proba = predictions(rng, 90)
    acc = WindowStatistics(parse_window("1W"))
    acc.add(times, y, proba)
    extras = window_extras(acc, column="ts", since=parse_instant("2026-11-01"), until=None, resamples=0)
    assert extras["window"]["column"] == "ts" and extras["window"]["size"] == "7D"
    assert extras["window"]["since"] == "2026-11-01T00:00:00Z" and extras["window"]["until"] is None
    assert extras["windows"] == window_results(acc, resamples=0, since=parse_instant("2026-11-01"))
    # The 7-day window runs from Thursday 29 October; --since cut it to 1 November.
    assert extras["windows"][0]["start"] == "2026-11-01T00:00:00Z"


# ------------------------------------------------------------------ reports


def windowed_result(tmp_path: Path, *, column: str = "ts", days: int = 20, resamples: int = 0, since=None):
    """The streamed audit of predictions every half hour over ``days`` days whose last day is
    overconfident, with 1-day windows, as the CLI builds it."""
    from dataclasses import replace

    from calaudit.engine.stream import audit_statistics

    rng = np.random.default_rng(30)
    data = frame(rng, 48 * days, "2026-11-01", freq="30min")
    late = data.index >= 48 * (days - 1)
    data.loc[late, "label"] = np.asarray(CLASSES, dtype=object)[rng.integers(0, 3, size=int(late.sum()))]
    data = data.rename(columns={"ts": column})
    write(data, tmp_path / "logs" / "part-0.parquet", row_group_size=100)
    dataset = open_prediction_dataset(tmp_path / "logs", time_col=column, since=since)
    acc = WindowStatistics(parse_window("1D"))
    statistics, info = stream_statistics(acc.observe(dataset.batches()), n_bins=15)
    result = audit_statistics(statistics, class_names=dataset.class_names,
                              source={"kind": "predictions-dataset", "path": str(tmp_path / "logs")},
                              options={}, execution={"engine": "stream", "batches": info["batches"]})
    extras = window_extras(acc, column=column, since=parse_instant(since), resamples=resamples, seed=0)
    return replace(result, extras={**result.extras, **extras})


def test_the_json_holds_the_windows_and_their_settings_at_the_top_level(tmp_path):
    import json

    from calaudit.result import AuditResult

    result = windowed_result(tmp_path, since="2026-11-03")
    document = json.loads(json.dumps(result.to_dict()))
    assert len(document["windows"]) == 18 and document["windows"][0]["start"] == "2026-11-03T00:00:00Z"
    assert document["window"]["column"] == "ts" and document["window"]["size"] == "1D"
    assert document["window"]["since"] == "2026-11-03T00:00:00Z" and document["window"]["level"] is None
    assert AuditResult.from_dict(document).extras["windows"] == document["windows"]


def test_the_terminal_and_markdown_show_the_latest_windows_and_count_the_rest(tmp_path):
    from calaudit.reporters import markdown, terminal

    result = windowed_result(tmp_path)
    text = terminal.render(result)
    assert "Calibration over time: 20 windows of 1 day by column ts (UTC" in text
    assert "... 8 earlier windows not shown" in text
    window_lines = [line for line in text.splitlines() if line.startswith("  2026-11-")]
    assert [line.split()[0] for line in window_lines] == [f"2026-11-{day:02d}" for day in range(9, 21)]
    assert all(" 48 " in line for line in window_lines)
    assert "Calibration got worse in the latest window with enough predictions, 20 November 2026: the model" in text
    summary = markdown.render(result)
    assert "#### Calibration over time" in summary
    assert summary.count("| 2026-11-") == 12 and "8 earlier windows are not shown" in summary


def test_a_change_is_put_in_plain_words_with_natural_frequencies(tmp_path, monkeypatch):
    from calaudit.report.window_charts import change_sentence

    spy_resample(monkeypatch)
    result = windowed_result(tmp_path, resamples=100)
    latest = result.extras["windows"][-1]
    right = round(latest["accuracy"] * latest["rows"])
    sentence = change_sentence(result)
    assert sentence.startswith("Calibration got worse in the latest window with enough predictions, 20 November 2026: "
                               "the model said it was ")
    assert f"was right {latest['accuracy'] * 100:.0f}% of the time ({right:,} of 48 predictions)" in sentence
    assert "before that it said" in sentence and "of 912)" in sentence


def test_the_html_report_draws_the_drift_chart_and_escapes_the_column_name(tmp_path, monkeypatch):
    import json
    import re

    from calaudit.reporters import html

    spy_resample(monkeypatch)
    column = "<b onmouseover=alert(1)>when</b>"
    page = html.render(windowed_result(tmp_path, column=column, resamples=100))
    assert '<section id="windows"' in page and '<div id="chart-windows" class="chart" data-chart' in page
    assert column not in page
    assert "&lt;b onmouseover=alert(1)&gt;when&lt;/b&gt;" in page
    spec = json.loads(re.search(r'<script type="application/json" id="data-chart-windows">(.*?)</script>', page,
                                re.DOTALL).group(1))
    names = [trace.get("name") for trace in spec["data"]]
    assert "Average gap between said and right" in names and "How often it was right" in names
    assert "95% interval of the gap" in names
    gap = next(t for t in spec["data"] if t.get("name") == "Average gap between said and right")
    assert len(gap["x"]) == 20 and gap["x"][0] == "2026-11-01 00:00:00"
    assert "Calibration got worse in the latest window" in page


def test_a_report_without_windows_has_no_window_section(tmp_path):
    from dataclasses import replace

    from calaudit.reporters import html, terminal

    result = windowed_result(tmp_path)
    plain = replace(result, extras={"execution": result.extras["execution"]})
    assert 'id="windows"' not in html.render(plain) and "Calibration over time" not in terminal.render(plain)


def test_real_intervals_are_those_of_each_windows_own_statistics():
    from calaudit.engine.resample import stream_intervals
    from calaudit.engine.windows import _window_seed

    rng = np.random.default_rng(40)
    n = 900
    times = START + rng.integers(0, 3 * DAY, size=n)
    y, proba = predictions(rng, n)
    acc = WindowStatistics(parse_window("1D"))
    for part in batches_of(times, y, proba, [0, 250, 251, 640, n]):
        acc.add(*part)
    results = window_results(acc, resamples=300, seed=5)
    index = np.floor_divide(times, DAY)
    for result, key in zip(results, np.unique(index)):
        rows = index == key
        alone = StreamStatistics.from_batch(y[rows], proba[rows], n_bins=15, fine_bins=16)
        expected = stream_intervals(alone, reference={name: result[name] for name in WINDOW_METRICS},
                                    metrics=WINDOW_METRICS, resamples=300, seed=_window_seed(5, int(key)))
        for name in WINDOW_METRICS:
            low, high = result["intervals"][name]["low"], result["intervals"][name]["high"]
            assert low <= result[name] <= high
            assert low == pytest.approx(expected.intervals[name].low, abs=1e-9)
            assert high == pytest.approx(expected.intervals[name].high, abs=1e-9)
        assert 0 <= result["ece_noise_floor"] < 0.2
    assert window_results(acc, resamples=300, seed=5) == results  # reproducible


def test_a_real_drop_in_calibration_is_called_worse(tmp_path):
    result = windowed_result(tmp_path, resamples=300)
    change = result.extras["window"]["change"]
    assert change["direction"] == "worse"
    assert change["latest"]["intervals"]["ece"]["low"] > change["earlier"]["intervals"]["ece"]["high"]
    assert result.extras["window"]["level"] == 0.95 and result.extras["window"]["resamples"] == 300


def test_a_hive_partition_key_as_time_column_drops_whole_files(tmp_path):
    rng = np.random.default_rng(41)
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        write(frame(rng, 12, day).drop(columns=["ts"]), tmp_path / "logs" / f"day={day}" / "part-0.parquet")
    corrupt_row_group(tmp_path / "logs" / "day=2026-11-01" / "part-0.parquet", 0)
    with pytest.raises(InvalidInputError, match="row group 1 cannot be read"):
        list(open_prediction_dataset(tmp_path / "logs", time_col="day").batches())
    dataset = open_prediction_dataset(tmp_path / "logs", time_col="day", since="2026-11-02T00:00Z")
    assert dataset.n_rows == 24
    batches = list(dataset.batches())
    assert {Path(b.file).parent.name for b in batches} == {"day=2026-11-02", "day=2026-11-03"}
    assert set(np.concatenate([b.time for b in batches]).tolist()) == {
        int(parse_instant(day).astype(np.int64)) for day in ("2026-11-02", "2026-11-03")}
