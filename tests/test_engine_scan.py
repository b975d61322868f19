"""calaudit.engine.scan: a Parquet prediction dataset read in validated record batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calaudit.engine.batch import Batch
from calaudit.engine.scan import open_prediction_dataset
from calaudit.errors import InvalidInputError, UsageError
from calaudit.loaders.table import load_prediction_file

CLASSES = ["cat", "dog", "bird"]
ROW_GROUP = 5  # tiny row groups and batches, so that every path is taken


def frame(rng: np.random.Generator, n: int, *, prefix: str = "prob_", labels: str = "names") -> pd.DataFrame:
    """Random predictions whose rows miss 1 by a little (so renormalisation matters)."""
    proba = rng.dirichlet(np.ones(len(CLASSES)), size=n) * rng.uniform(0.995, 1.005, size=(n, 1))
    y = rng.integers(0, len(CLASSES), size=n)
    label = np.asarray(CLASSES, dtype=object)[y] if labels == "names" else y
    data = {"id": np.arange(n), "label": label}
    data |= {f"{prefix}{name}": proba[:, k] for k, name in enumerate(CLASSES)}
    return pd.DataFrame(data)


def write(table: pd.DataFrame | pa.Table, path: Path, row_group_size: int = ROW_GROUP) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def hive_dataset(root: Path, parts: list[pd.DataFrame]) -> list[Path]:
    """One file per day partition; returns the files in sorted order."""
    return [write(part, root / f"day=2026-11-0{i + 1}" / "part-0.parquet") for i, part in enumerate(parts)]


def concatenated(batches: list[Batch]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([b.y for b in batches]), np.concatenate([b.proba for b in batches])


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# --- what is read --------------------------------------------------------------------


def test_a_hive_directory_and_a_glob_give_the_rows_pandas_reads(tmp_path):
    rng = np.random.default_rng(0)
    parts = [frame(rng, n) for n in (12, 7, 9)]
    files = hive_dataset(tmp_path / "logs", parts)
    for source in (tmp_path / "logs", str(tmp_path / "logs" / "*" / "*.parquet")):
        dataset = open_prediction_dataset(source, batch_rows=3)
        assert dataset.files == tuple(str(f) for f in files)
        batches = list(dataset.batches())
        y, proba = concatenated(batches)
        expected = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        assert y.tolist() == [CLASSES.index(label) for label in expected["label"]]
        raw = expected[["prob_cat", "prob_dog", "prob_bird"]].to_numpy()
        np.testing.assert_allclose(proba, raw / raw.sum(axis=1, keepdims=True), rtol=1e-15, atol=0)
        assert dataset.class_names == tuple(CLASSES)
        assert dataset.probability_columns == ("prob_cat", "prob_dog", "prob_bird")


@pytest.mark.parametrize("case", ["prob_columns", "prob_cols_glob", "score_col", "logits", "score_logits", "indices"])
def test_batches_concatenated_equal_the_in_memory_loader(tmp_path, case):
    rng = np.random.default_rng(1)
    data = frame(rng, 31, prefix="p_" if case == "prob_cols_glob" else "prob_",
                 labels="indices" if case == "indices" else "names")
    options: dict = {}
    if case == "prob_cols_glob":
        options = {"prob_cols": ["p_*"]}
    elif case in ("score_col", "score_logits"):
        data = data.drop(columns=["prob_cat", "prob_bird"]).rename(columns={"prob_dog": "score"})
        data["label"] = (data["label"] == "dog").astype(int)
        options = {"score_col": "score", "class_names": ["other", "dog"]}
    if case in ("logits", "score_logits"):
        numbers = [c for c in data.columns if c not in ("id", "label")]
        data[numbers] = rng.normal(scale=4.0, size=(len(data), len(numbers)))
        options["logits"] = True
    single = write(data, tmp_path / "whole.parquet")
    cuts = [0, 11, 12, 31]  # a one-row file in the middle
    for i, (start, stop) in enumerate(zip(cuts[:-1], cuts[1:])):
        write(data.iloc[start:stop], tmp_path / "parts" / f"part-{i}.parquet")

    expected = load_prediction_file(single, **options)
    dataset = open_prediction_dataset(tmp_path / "parts", batch_rows=4, **options)
    y, proba = concatenated(list(dataset.batches()))
    np.testing.assert_array_equal(y, expected.y_true)
    assert y.dtype == np.intp
    np.testing.assert_allclose(proba, expected.y_proba, rtol=0, atol=1e-15)
    assert dataset.class_names == expected.class_names
    assert dataset.transform == expected.transform


def test_diagnostics_of_the_batches_merge_to_the_in_memory_ones(tmp_path):
    data = frame(np.random.default_rng(2), 23)
    data.loc[17, ["prob_cat", "prob_dog", "prob_bird"]] = [-3e-7, 0.5, 0.5]  # rounding below 0: clipped, counted
    write(data, tmp_path / "one.parquet")
    expected = load_prediction_file(tmp_path / "one.parquet")
    batches = list(open_prediction_dataset(tmp_path / "one.parquet", batch_rows=4).batches())
    assert max(b.max_row_sum_deviation for b in batches) == expected.max_row_sum_deviation
    assert sum(b.clipped_values for b in batches) == expected.clipped_values == 1


def test_n_rows_comes_from_the_metadata_and_matches_the_rows_read(tmp_path):
    rng = np.random.default_rng(3)
    hive_dataset(tmp_path / "logs", [frame(rng, 13), frame(rng, 0), frame(rng, 8)])
    dataset = open_prediction_dataset(tmp_path / "logs", batch_rows=4)
    assert dataset.n_rows == 21
    assert sum(b.n_rows for b in dataset.batches()) == 21


def test_batches_never_exceed_batch_rows_and_say_where_their_rows_are(tmp_path):
    data = frame(np.random.default_rng(4), 23)
    path = write(data, tmp_path / "one.parquet")
    for batch_rows in (1, 2, 3, 5, 7, 1000):
        batches = list(open_prediction_dataset(path, batch_rows=batch_rows).batches())
        assert max(b.n_rows for b in batches) <= batch_rows
        # Each batch lies inside one row group and starts where the previous one ended.
        assert [b.first_row for b in batches] == list(np.cumsum([0] + [b.n_rows for b in batches[:-1]]))
        assert all(b.first_row // ROW_GROUP == b.row_group == (b.first_row + b.n_rows - 1) // ROW_GROUP
                   for b in batches)
        assert {b.file for b in batches} == {str(path)}


def test_a_batch_is_read_only(tmp_path):
    path = write(frame(np.random.default_rng(5), 6), tmp_path / "one.parquet")
    batch = next(open_prediction_dataset(path).batches())
    assert not batch.y.flags.writeable and not batch.proba.flags.writeable


def test_probability_columns_are_read_by_name_whatever_their_order_in_a_file(tmp_path):
    data = frame(np.random.default_rng(6), 10)
    write(data.iloc[:5], tmp_path / "a.parquet")
    write(data.iloc[5:][["prob_bird", "label", "prob_cat", "prob_dog"]], tmp_path / "b.parquet")
    y, proba = concatenated(list(open_prediction_dataset(str(tmp_path / "*.parquet")).batches()))
    raw = data[["prob_cat", "prob_dog", "prob_bird"]].to_numpy()
    np.testing.assert_allclose(proba, raw / raw.sum(axis=1, keepdims=True), rtol=1e-15, atol=0)


def test_a_label_may_be_a_hive_partition_key(tmp_path):
    data = frame(np.random.default_rng(7), 12)
    for name in ("cat", "dog"):
        write(data[data["label"] == name].drop(columns="label"), tmp_path / "logs" / f"label={name}" / "p.parquet")
    batches = list(open_prediction_dataset(tmp_path / "logs", batch_rows=2).batches())
    for batch in batches:
        partition = Path(batch.file).parent.name.removeprefix("label=")
        assert batch.y.tolist() == [CLASSES.index(partition)] * batch.n_rows
    assert sum(b.n_rows for b in batches) == data["label"].isin(["cat", "dog"]).sum()


def test_files_whose_names_start_with_an_underscore_or_a_dot_are_skipped(tmp_path):
    write(frame(np.random.default_rng(8), 4), tmp_path / "logs" / "part-0.parquet")
    (tmp_path / "logs" / "_SUCCESS").write_text("")
    (tmp_path / "logs" / ".part-0.parquet.crc").write_bytes(b"\x00\x01")
    assert open_prediction_dataset(tmp_path / "logs").n_rows == 4


def test_the_inputs_are_not_modified(tmp_path):
    path = write(frame(np.random.default_rng(9), 8), tmp_path / "one.parquet")
    before = path.read_bytes()
    list(open_prediction_dataset(path, batch_rows=3).batches())
    assert path.read_bytes() == before


# --- bad options ---------------------------------------------------------------------


@pytest.mark.parametrize("batch_rows", [0, -1, 2.5, True])
def test_batch_rows_must_be_a_positive_whole_number(tmp_path, batch_rows):
    path = write(frame(np.random.default_rng(10), 4), tmp_path / "one.parquet")
    with pytest.raises(UsageError, match="batch_rows"):
        open_prediction_dataset(path, batch_rows=batch_rows)


def test_prob_cols_and_score_col_together_are_a_usage_error(tmp_path):
    path = write(frame(np.random.default_rng(11), 4), tmp_path / "one.parquet")
    with pytest.raises(UsageError, match="either --prob-cols or --score-col"):
        open_prediction_dataset(path, prob_cols=["prob_*"], score_col="prob_cat")


# --- bad datasets: one line naming the file, and the row group where there is one ----


def test_a_file_missing_a_probability_column_is_refused_at_open(tmp_path):
    rng = np.random.default_rng(12)
    files = hive_dataset(tmp_path / "logs", [frame(rng, 6), frame(rng, 6).drop(columns="prob_bird")])
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(tmp_path / "logs")
    message = one_line_error(excinfo)
    assert message.startswith(f"{files[1]}: no column prob_bird; expected the probability columns of {files[0]}")


def test_a_file_with_an_extra_probability_column_is_refused_at_open(tmp_path):
    rng = np.random.default_rng(13)
    extra = frame(rng, 6).assign(prob_fish=0.0)
    files = hive_dataset(tmp_path / "logs", [frame(rng, 6), extra])
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(tmp_path / "logs")
    assert one_line_error(excinfo).startswith(f"{files[1]}: an extra probability column prob_fish;")


def test_a_file_without_the_label_column_is_refused_at_open(tmp_path):
    rng = np.random.default_rng(14)
    files = hive_dataset(tmp_path / "logs", [frame(rng, 6), frame(rng, 6).drop(columns="label")])
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(tmp_path / "logs")
    assert one_line_error(excinfo).startswith(f"{files[1]}: no label column 'label'")


def test_a_label_column_of_lists_is_refused_at_open(tmp_path):
    data = frame(np.random.default_rng(15), 4)
    good = write(data, tmp_path / "a.parquet")
    table = pa.Table.from_pandas(data, preserve_index=False).set_column(
        1, "label", pa.array([[0], [1], [2], [0]], type=pa.list_(pa.int64())))
    bad = write(table, tmp_path / "b.parquet")
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(str(tmp_path / "*.parquet"))
    assert one_line_error(excinfo).startswith(f"{bad}: column label has type list<")
    assert open_prediction_dataset(good).n_rows == 4


def test_label_bytes_that_are_not_text_name_file_and_row_group(tmp_path):
    data = frame(np.random.default_rng(24), 8)
    labels = [name.encode() for name in data["label"]]
    labels[6] = b"\xff\xfe"
    table = pa.Table.from_pandas(data, preserve_index=False).set_column(1, "label", pa.array(labels, pa.binary()))
    path = write(table, tmp_path / "a.parquet")
    message = scan_error(path)
    assert message.startswith(f"{path}: row group 2: column label has type binary and holds bytes that are not UTF-8")


def test_a_label_column_of_another_readable_type_is_read(tmp_path):
    data = frame(np.random.default_rng(16), 10, labels="indices")
    write(data.iloc[:5], tmp_path / "a.parquet")
    write(data.iloc[5:].assign(label=lambda f: np.asarray(CLASSES, dtype=object)[f["label"]]), tmp_path / "b.parquet")
    y, _ = concatenated(list(open_prediction_dataset(str(tmp_path / "*.parquet")).batches()))
    assert y.tolist() == data["label"].tolist()


def test_a_probability_column_of_timestamps_is_refused_at_open(tmp_path):
    data = frame(np.random.default_rng(17), 4)
    write(data, tmp_path / "a.parquet")
    bad = write(data.assign(prob_dog=pd.Timestamp("2026-11-02")), tmp_path / "b.parquet")
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(str(tmp_path / "*.parquet"))
    assert one_line_error(excinfo).startswith(f"{bad}: column prob_dog has type timestamp")


@pytest.mark.parametrize("position", ["first", "last"])
def test_a_file_that_is_not_parquet_is_named(tmp_path, position):
    rng = np.random.default_rng(18)
    write(frame(rng, 4), tmp_path / "logs" / "b.parquet")
    bad = tmp_path / "logs" / ("a.parquet" if position == "first" else "c.parquet")
    bad.write_text("label,prob_a\ncat,1\n")
    for source in (tmp_path / "logs", str(tmp_path / "logs" / "*.parquet")):
        with pytest.raises(InvalidInputError) as excinfo:
            open_prediction_dataset(source)
        assert one_line_error(excinfo).startswith(f"{bad}: not a readable Parquet file (")


def corrupt_row_group(path: Path, group: int) -> None:
    """Overwrite one column chunk of row group ``group`` (the footer stays intact)."""
    chunk = pq.read_metadata(path).row_group(group).column(2)
    start = min(offset for offset in (chunk.dictionary_page_offset, chunk.data_page_offset) if offset)
    data = bytearray(path.read_bytes())
    data[start : start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(data))


def test_a_corrupt_row_group_is_named_and_nothing_follows_it(tmp_path):
    rng = np.random.default_rng(19)
    files = hive_dataset(tmp_path / "logs", [frame(rng, 12), frame(rng, 12), frame(rng, 12)])
    corrupt_row_group(files[1], 1)
    dataset = open_prediction_dataset(tmp_path / "logs", batch_rows=2)  # the footers are fine
    batches = dataset.batches()
    seen = []
    with pytest.raises(InvalidInputError) as excinfo:
        for batch in batches:
            seen.append(batch)
    message = one_line_error(excinfo)
    assert message.startswith(f"{files[1]}: row group 2 cannot be read (")
    assert next(batches, None) is None
    # Everything before the bad row group was read; nothing after it.
    assert {(b.file, b.row_group) for b in seen} == {(str(files[0]), g) for g in range(3)} | {(str(files[1]), 0)}


def test_an_empty_directory_is_refused(tmp_path):
    (tmp_path / "logs").mkdir()
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(tmp_path / "logs")
    assert one_line_error(excinfo).startswith(f"{tmp_path / 'logs'}: no Parquet files;")


def test_a_glob_matching_nothing_and_a_missing_path_are_refused(tmp_path):
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(str(tmp_path / "*.parquet"))
    assert one_line_error(excinfo).startswith(f"{tmp_path / '*.parquet'}: no file matches this glob;")
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(tmp_path / "nothing")
    assert one_line_error(excinfo).startswith(f"{tmp_path / 'nothing'}: no such file or directory;")


def test_a_glob_matching_a_directory_is_refused(tmp_path):
    write(frame(np.random.default_rng(20), 4), tmp_path / "logs" / "day=1" / "p.parquet")
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(str(tmp_path / "logs" / "*"))
    assert "matches the directory" in one_line_error(excinfo)


def test_a_dataset_without_rows_is_refused(tmp_path):
    rng = np.random.default_rng(21)
    hive_dataset(tmp_path / "logs", [frame(rng, 0), frame(rng, 0)])
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(tmp_path / "logs")
    assert one_line_error(excinfo).startswith(f"{tmp_path / 'logs'}: no rows in its 2 files;")


def bad_value_dataset(tmp_path: Path, column: str, value, row: int, dtype=None) -> tuple[Path, Path]:
    """A good file, then a file whose ``column`` holds ``value`` at 0-based ``row``."""
    rng = np.random.default_rng(22)
    first = write(frame(rng, 9), tmp_path / "a.parquet")
    data = frame(rng, 23)
    if dtype is not None:
        data[column] = data[column].astype(dtype)
    data.loc[row, column] = value
    return first, write(data, tmp_path / "b.parquet")


def scan_error(source, **options) -> str:
    batches = open_prediction_dataset(source, batch_rows=2, **options).batches()
    with pytest.raises(InvalidInputError) as excinfo:
        for _ in batches:
            pass
    assert next(batches, None) is None  # nothing after the error
    return one_line_error(excinfo)


# Row 11 (0-based) of a file of 5-row groups read 2 rows at a time: row group 3 (rows
# 10-14), its row 2, the file's row 12, counted from 1.
WHERE = "row group 3, row 2 (row 12 of the file)"


def test_a_probability_outside_the_range_names_file_row_group_and_row(tmp_path):
    _, bad = bad_value_dataset(tmp_path, "prob_dog", 1.7, 11)
    message = scan_error(str(tmp_path / "*.parquet"))
    assert message.startswith(f"{bad}: {WHERE}, column prob_dog: value 1.7 is outside [0, 1]; expected a probability")


def test_a_missing_probability_names_file_row_group_and_row(tmp_path):
    _, bad = bad_value_dataset(tmp_path, "prob_cat", np.nan, 11)
    message = scan_error(str(tmp_path / "*.parquet"))
    assert message == f"{bad}: {WHERE}, column prob_cat: the value is missing (null or NaN); expected a probability"


def test_a_row_sum_off_names_file_row_group_and_row(tmp_path):
    _, bad = bad_value_dataset(tmp_path, "prob_bird", 0.9, 11)
    data = pd.read_parquet(bad)
    data.loc[11, ["prob_cat", "prob_dog"]] = 0.3
    write(data, bad)
    message = scan_error(str(tmp_path / "*.parquet"))
    assert message.startswith(f"{bad}: {WHERE}: probabilities sum to 1.5; expected 1 within 0.01")


def test_text_that_is_no_number_names_file_row_group_and_row(tmp_path):
    _, bad = bad_value_dataset(tmp_path, "prob_cat", "high", 11, dtype=str)
    message = scan_error(str(tmp_path / "*.parquet"))
    assert message == f"{bad}: {WHERE}, column prob_cat: value 'high' is not a number; expected a probability"


def test_a_logit_that_is_not_finite_names_file_row_group_and_row(tmp_path):
    good, bad = bad_value_dataset(tmp_path, "prob_cat", np.inf, 11)
    for path in (good, bad):  # logits, not probabilities (those are refused as logits): log p, inf stays inf
        data = pd.read_parquet(path)
        columns = [name for name in data.columns if name.startswith("prob_")]
        data[columns] = np.log(data[columns])
        write(data, path)
    message = scan_error(str(tmp_path / "*.parquet"), logits=True)
    assert message == f"{bad}: {WHERE}, column prob_cat: logit inf is not a finite number"


def test_a_missing_label_names_file_row_group_and_row(tmp_path):
    _, bad = bad_value_dataset(tmp_path, "label", None, 11)
    message = scan_error(str(tmp_path / "*.parquet"))
    assert message == f"{bad}: {WHERE}, column label: missing label; every row needs a true label"


def test_an_unknown_label_names_file_row_group_and_row(tmp_path):
    _, bad = bad_value_dataset(tmp_path, "label", "fish", 11)
    message = scan_error(str(tmp_path / "*.parquet"))
    assert message.startswith(f"{bad}: {WHERE}, column label: label 'fish' is not one of the 3 classes")


def test_the_batches_before_a_bad_row_are_yielded_and_none_after(tmp_path):
    first, bad = bad_value_dataset(tmp_path, "prob_dog", 1.7, 11)
    dataset = open_prediction_dataset(str(tmp_path / "*.parquet"), batch_rows=2)
    seen = []
    with pytest.raises(InvalidInputError):
        for batch in dataset.batches():
            seen.append(batch)
    assert sum(b.n_rows for b in seen if b.file == str(first)) == 9
    # The bad file's batches stop before the batch holding its row 11 (rows 10-11).
    assert max(b.first_row + b.n_rows for b in seen if b.file == str(bad)) == 10


def test_file_batches_reads_one_file(tmp_path):
    rng = np.random.default_rng(23)
    files = hive_dataset(tmp_path / "logs", [frame(rng, 6), frame(rng, 4)])
    dataset = open_prediction_dataset(tmp_path / "logs", batch_rows=3)
    assert sum(b.n_rows for b in dataset.file_batches(str(files[1]))) == 4
    with pytest.raises(UsageError):
        dataset.file_batches(str(tmp_path / "other.parquet"))
