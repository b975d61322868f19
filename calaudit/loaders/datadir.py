"""Labelled data directories that a model is run over (README, "Data directories").

Three layouts, detected in this order (or chosen with ``data_format``):

* ``arrays``: ``features.npy`` (or ``features.npz`` whose keys are the model's input
  names) plus labels in ``labels.npy`` / ``labels.csv`` / ``labels.txt`` (one per row)
  or a ``labels`` array inside the ``.npz``;
* ``table``: one ``.csv`` / ``.csv.gz`` / ``.parquet`` file with a label column and
  feature columns (in the model's input order, or named after the inputs);
* ``images``: ``<class_name>/*.png|jpg|jpeg|webp|bmp`` folders (ImageFolder).

Class names may also come from ``classes.txt`` (one per line, in the model's output
order); ``labels.txt`` is read as class names when it is not the per-row label file.
Arrays are loaded with ``allow_pickle=False``: a data file is never unpickled.

Human labels may come with the data: ``votes.npy`` (counts) or ``soft_labels.npy``
(distributions) of shape (N, K) in a data directory of any layout, one row per data
row (per image, in the sorted order of the image list) and one column per class in
the model's output order; or ``votes_<class>`` / ``soft_<class>`` columns of a table
(``votes_cols`` / ``soft_cols``), which are then no feature columns. With human
labels and no labels, the labels are the plurality vote (:mod:`calaudit.loaders.model_run`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, Location, UsageError, first_line
from ..files.formats import table_format
from ..files.info import Digests, file_present, path_problem, read_head
from .dataset import IMAGE_SUFFIXES, Dataset, FeatureBatch, HumanData, read_class_names_file, read_utf8  # noqa: F401 - re-exported
from .human_columns import HUMAN_FILES, is_pattern, numbers_or_error, select_human_columns

DATA_FORMATS = ("auto", "arrays", "table", "images")
_LABEL_FILES = ("labels.npy", "labels.csv", "labels.txt")


# ------------------------------------------------------------------ feature matrices


def cast_feature(values: np.ndarray, spec: Any, *, where: str, locate: Any = None) -> np.ndarray:
    """Cast a block of features to the element type the model input wants.

    ``locate(row, column)`` names where a value of the block (its row in the block,
    its flat position in the row) came from, for the messages about one value."""
    from ..onnx.model import INPUT_DTYPES

    dtype = INPUT_DTYPES.get(spec.element_type)
    if dtype is None:
        raise InvalidInputError(f"{where}: the model input {spec.name!r} has type {spec.type}, which calaudit cannot feed")
    if dtype is np.str_:
        if values.dtype.kind == "O":
            import pandas as pd

            if pd.isna(values).any():
                raise InvalidInputError(
                    f"{where}: the model input {spec.name!r} takes text but the data has a missing (null) value"
                )
        nested = (np.frompyfunc(lambda v: isinstance(v, (list, tuple, dict, np.ndarray)), 1, 1)(values).astype(bool)
                  if values.dtype.kind == "O" else np.zeros(values.shape, dtype=bool))
        try:
            if nested.any():  # a list or struct column: its Python repr is no text a model was trained on
                raise TypeError("nested values")
            return values.astype(str).astype(object)
        except (TypeError, ValueError):
            flat = values.reshape(-1)
            first = flat[int(np.argmax(nested.reshape(-1)))] if nested.any() else flat[0]
            raise InvalidInputError(
                f"{where}: the model input {spec.name!r} takes text but the data holds values such as {first!r}"
            ) from None
    if values.dtype.kind in "cV":  # complex numbers, structured records: no number to feed
        raise InvalidInputError(
            f"{where}: the model input {spec.name!r} expects numbers ({spec.element_type}) but the data holds "
            f"{values.dtype} values"
        )
    if values.dtype.kind in "OUSmM":
        try:
            if values.dtype.kind in "mM":
                raise TypeError("dates and times are not numbers")
            # Text as numbers first, then the checks below: "1.5" is not an integer either.
            values = values.astype(np.float64)
        except (TypeError, ValueError):  # text, or objects such as dates (a typed Parquet column)
            raise InvalidInputError(
                f"{where}: the model input {spec.name!r} expects numbers ({spec.element_type}) but the data holds "
                f"{_first_non_number(values)}"
            ) from None
    if np.issubdtype(dtype, np.integer):
        _check_integers(values, dtype, spec, where=where)
    elif np.issubdtype(dtype, np.floating) and values.dtype.kind in "fiu" and values.dtype.itemsize > np.dtype(dtype).itemsize:
        _check_float_range(values, dtype, spec, where=where, locate=locate)
    return values.astype(dtype, copy=False)


def _check_float_range(values: np.ndarray, dtype: Any, spec: Any, *, where: str, locate: Any = None) -> None:
    """Refuse finite features beyond the input's float type (3.5e38 for float32): the cast
    would make them infinite, and the model's output would blame the wrong thing."""
    from ..errors import show

    largest = float(np.finfo(dtype).max)
    with np.errstate(invalid="ignore"):
        outside = np.isfinite(values) & (np.abs(values) > largest)
    if outside.any():
        flat = outside.reshape(outside.shape[0], -1)
        row, column = divmod(int(np.argmax(flat.reshape(-1))), flat.shape[1])
        value = values.reshape(flat.shape)[row, column]
        place = locate(row, column) if locate is not None else where
        raise InvalidInputError(
            f"{place} is {show(value)}; the model input {spec.name!r} takes {spec.element_type} numbers, at most "
            f"{largest:.4g} in size"
        )


def _check_integers(values: np.ndarray, dtype: Any, spec: Any, *, where: str) -> None:
    """Refuse features an integer input cannot take exactly: fractions, missing values,
    and numbers outside the type's range (numpy's cast would wrap them around silently)."""
    from ..errors import show

    if values.dtype.kind == "f" and (not np.all(np.isfinite(values)) or not np.all(values == np.round(values))):
        raise InvalidInputError(
            f"{where}: the model input {spec.name!r} expects integers ({spec.element_type}) but the data "
            "holds fractional or missing values"
        )
    info = np.iinfo(dtype)
    if values.dtype.kind == "f":  # the bounds as float64, exactly: 2**63 itself is out of int64's range
        top = 2.0 ** (info.bits if info.min == 0 else info.bits - 1)
        wide = values.astype(np.float64, copy=False)  # float16 cannot hold the bounds
        outside = (wide < float(info.min)) | (wide >= top)
    else:
        outside = (values < info.min) | (values > info.max)
    if outside.any():
        value = values.reshape(-1)[int(np.argmax(outside.reshape(-1)))]
        raise InvalidInputError(
            f"{where}: the model input {spec.name!r} expects integers ({spec.element_type}, {info.min} to "
            f"{info.max}) but the data holds {show(value)}"
        )


def _first_non_number(values: np.ndarray) -> str:
    """``text such as 'x'`` / ``values such as datetime.date(2024, 1, 5)``: for the error message."""
    import pandas as pd

    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind in "mM":
        return f"dates or times such as {str(flat[0])!r}"
    bad = pd.to_numeric(pd.Series(flat, dtype=object), errors="coerce").isna().to_numpy() & ~pd.isna(flat)
    value = flat[int(np.argmax(bad))] if bad.any() else flat[0]
    return f"text such as {value!r}" if isinstance(value, str) else f"values such as {value!r}"


def fit_row_shape(block: np.ndarray, spec: Any, *, where: str) -> np.ndarray:
    """Reshape ``(n, ...)`` feature rows to the input's fixed row shape when sizes agree."""
    row_shape = spec.row_shape
    if not row_shape or any(not isinstance(d, int) or d < 0 for d in row_shape):
        return block
    wanted = int(np.prod(row_shape))
    have = int(np.prod(block.shape[1:])) if block.ndim > 1 else 1
    if tuple(block.shape[1:]) == tuple(row_shape):
        return block
    if have != wanted:
        raise InvalidInputError(
            f"{where}: the model input {spec.describe()} takes {wanted} values per row, the data has {have}"
            f" (shape {tuple(block.shape[1:])})"
        )
    return block.reshape((block.shape[0], *row_shape))


@dataclass
class ArrayDataset(Dataset):
    """``features.npy`` / ``features.npz`` plus labels."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    features_file: str = "features.npy"

    def batches(self, inputs: Sequence[Any], batch_size: int) -> Iterator[FeatureBatch]:
        sources = _match_inputs(self.path, inputs, self.arrays)
        for start in range(0, self.n_rows, batch_size):
            stop = min(start + batch_size, self.n_rows)
            feeds = {}
            for spec in inputs:
                where = f"{self.path}"
                block = np.asarray(sources[spec.name][start:stop])
                feeds[spec.name] = cast_feature(
                    fit_row_shape(block, spec, where=where), spec, where=where,
                    locate=lambda row, column, name=spec.name, first=start: self.feature_location(
                        inputs, name, first + row, column),
                )
            yield FeatureBatch(feeds, np.arange(start, stop))

    def feature_location(self, inputs: Sequence[Any], input_name: str, row: int, column: int) -> str:
        sources = _match_inputs(self.path, inputs, self.arrays)
        name = next((key for key, array in self.arrays.items() if array is sources[input_name]), input_name)
        shape = np.shape(sources[input_name])[1:]
        where = self.path / self.features_file
        index = ", ".join(str(int(i)) for i in (row, *np.unravel_index(column, shape))) if shape else str(row)
        if len(shape) == 1:
            return f"{where}: row {row + 1}, column {column + 1} ({name}[{index}])"
        return f"{where}: row {row + 1} ({name}[{index}])"

    def numeric_features(self, rows: np.ndarray) -> np.ndarray | None:
        parts = [_numeric(np.asarray(array)[rows]) for name, array in self.arrays.items() if name != "labels"]
        if not parts or any(part is None for part in parts):
            return None
        return np.concatenate(parts, axis=1)


def _numeric(matrix: np.ndarray) -> np.ndarray | None:
    if matrix.dtype.kind not in "biuf":
        return None
    matrix = matrix.reshape(matrix.shape[0], -1).astype(np.float64)
    return matrix if np.isfinite(matrix).all() else None


def _match_inputs(path: Path, inputs: Sequence[Any], arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [spec.name for spec in inputs]
    if len(inputs) == 1 and len(arrays) == 1:
        return {names[0]: next(iter(arrays.values()))}
    missing = [name for name in names if name not in arrays]
    if missing:
        raise InvalidInputError(
            f"{path}: the model expects inputs {', '.join(s.describe() for s in inputs)}; the data provides "
            f"arrays {', '.join(arrays) or 'none'} (name the .npz arrays after the inputs)"
        )
    return {name: arrays[name] for name in names}


@dataclass
class TableDataset(Dataset):
    """One table: a label column and feature columns."""

    frame: Any = None
    feature_columns: list[str] = field(default_factory=list)

    def batches(self, inputs: Sequence[Any], batch_size: int) -> Iterator[FeatureBatch]:
        from .csv_reader import read_text_columns

        columns = self._columns_per_input(inputs)
        blocks = {}
        for spec in inputs:
            cols = columns[spec.name]
            if spec.element_type == "string" and table_format(self.path) != "parquet":
                # Text inputs get the cells verbatim: no "NA" -> NaN, no "007" -> 7.
                blocks[spec.name] = read_text_columns(self.path, cols)
            else:
                blocks[spec.name] = self.frame[cols].to_numpy()
        for start in range(0, self.n_rows, batch_size):
            stop = min(start + batch_size, self.n_rows)
            feeds = {}
            for spec in inputs:
                where = f"{self.path}"
                block = blocks[spec.name][start:stop]
                feeds[spec.name] = cast_feature(
                    fit_row_shape(block, spec, where=where), spec, where=where,
                    locate=lambda row, column, name=spec.name, first=start: self.feature_location(
                        inputs, name, first + row, column),
                )
            yield FeatureBatch(feeds, np.arange(start, stop))

    def feature_location(self, inputs: Sequence[Any], input_name: str, row: int, column: int) -> str:
        columns = self._columns_per_input(inputs)[input_name]
        if column >= len(columns):  # pragma: no cover - the feed is built from these columns
            return super().feature_location(inputs, input_name, row, column)
        return Location(str(self.path), columns, True, self.label_location.line_of).cell(row, column)

    def numeric_features(self, rows: np.ndarray) -> np.ndarray | None:
        frame = self.frame[self.feature_columns]
        numeric = [c for c in frame.columns if frame[c].dtype.kind in "biuf"]
        if not numeric:
            return None
        return _numeric(frame[numeric].to_numpy()[rows])

    def _columns_per_input(self, inputs: Sequence[Any]) -> dict[str, list[str]]:
        available = self.feature_columns
        if len(inputs) == 1:
            return {inputs[0].name: list(available)}
        mapping = {}
        for spec in inputs:
            if spec.name in available:
                mapping[spec.name] = [spec.name]
                continue
            prefixed = [c for c in available if c.startswith(f"{spec.name}.") or c.startswith(f"{spec.name}[")]
            if not prefixed:
                raise InvalidInputError(
                    f"{self.path}: the model expects inputs {', '.join(s.describe() for s in inputs)}; the table "
                    f"has no column {spec.name!r} (columns: {', '.join(available[:12])}"
                    f"{', ...' if len(available) > 12 else ''})"
                )
            mapping[spec.name] = prefixed
        return mapping


# ------------------------------------------------------------------ detection


def load_data_directory(
    path: str | Path,
    *,
    data_format: str = "auto",
    label_col: str = "label",
    feature_cols: Sequence[str] | None = None,
    preprocess: dict[str, Any] | None = None,
    skip_bad_images: bool = False,
    allow_large_images: bool = False,
    model: Any = None,
    warn: Any = None,
    votes_cols: Sequence[str] | None = None,
    soft_cols: Sequence[str] | None = None,
) -> Dataset:
    """Detect the layout of ``path`` and read its labels (features are read per batch).

    Image folders only: ``allow_large_images`` lifts Pillow's decompression-bomb limit,
    ``model`` (a :class:`calaudit.onnx.model.VendorModel`) may carry preprocessing
    metadata, and ``warn(message)`` is told of a warning once. Human labels found
    (``votes.npy``, ``soft_labels.npy`` or a table's ``votes_cols`` / ``soft_cols``)
    are in ``Dataset.human``, not yet matched to the model's classes.
    """
    path = Path(path)
    if data_format not in DATA_FORMATS:
        raise UsageError(f"--data-format must be one of {', '.join(DATA_FORMATS)}; got {data_format!r}")
    if votes_cols and soft_cols:
        raise UsageError("give either --votes-cols or --soft-cols, not both (one kind of human labels per audit)")
    problem = path_problem(path, want_dir=True, missing="no such data directory")
    if problem is not None and path.is_file():  # DATA may be a single table file
        if table_format(path) is None:
            raise InvalidInputError(f"{path}: expected a data directory or a .csv/.parquet table")
        return _load_table(path, path, label_col, feature_cols, votes_cols, soft_cols)
    if problem is not None:
        raise InvalidInputError(f"{path}: {problem}; expected a data directory or a .csv/.parquet table")
    kind = data_format if data_format != "auto" else _detect(path)
    if kind != "table" and (votes_cols or soft_cols):
        option = "--votes-cols" if votes_cols else "--soft-cols"
        raise UsageError(
            f"{option} names columns of a table, but {path} is read as {kind}: give its human labels in "
            "votes.npy or soft_labels.npy beside the data"
        )
    human = _human_file(path)
    if kind == "arrays":
        return _load_arrays(path, human)
    if kind == "table":
        return _load_table(path, _single_table(path), label_col, feature_cols, votes_cols, soft_cols, human)
    from .images import load_image_folder

    dataset = load_image_folder(path, preprocess=preprocess, skip_bad_images=skip_bad_images,
                                allow_large_images=allow_large_images, model=model, warn=warn)
    return _with_human(dataset, human, "images (one row per image, in the sorted order of the image list)")


def _human_file(directory: Path) -> HumanData | None:
    """``votes.npy`` or ``soft_labels.npy`` in a data directory, as an (N, K) float64 matrix."""
    present = [name for name in HUMAN_FILES if file_present(directory / name)]
    if len(present) > 1:
        raise InvalidInputError(
            f"{directory}: both {' and '.join(present)}; keep one kind of human labels (vote counts or soft labels)"
        )
    if not present:
        return None
    file = directory / present[0]
    array = np.asarray(_load_npy(file))
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"{file}: holds {array.dtype} values; expected numbers, one row per data row and one column per class"
        )
    if array.ndim != 2:
        raise InvalidInputError(
            f"{file}: shape {array.shape}; expected (rows, classes): one row per data row and one column per class"
        )
    return HumanData(HUMAN_FILES[present[0]], np.array(array, dtype=np.float64), str(file))


def _with_human(dataset: Dataset, human: HumanData | None, rows: str) -> Dataset:
    """``dataset`` with its human labels, when their row count matches the data's."""
    if human is None:
        return dataset
    if dataset.labels is not None and human.values.shape[0] != dataset.n_rows:
        raise InvalidInputError(
            f"{human.source}: {human.values.shape[0]} rows of human labels for {dataset.n_rows} data rows of "
            f"{dataset.path} ({rows}); expected one row per data row, in the same order"
        )
    dataset.human = human
    dataset.files.add(Path(human.source).name, Path(human.source))
    return dataset


def _detect(path: Path) -> str:
    names = {p.name for p in path.iterdir()}
    if "features.npy" in names or "features.npz" in names:
        return "arrays"
    if _tables(path):
        return "table"
    if any(child.is_dir() and _has_images(child) for child in path.iterdir()):
        return "images"
    raise InvalidInputError(
        f"{path}: no features.npy/.npz, no .csv/.parquet table and no class folders of images; "
        "expected one of the layouts in the README (Data directories)"
    )


def _tables(path: Path) -> list[Path]:
    # file_present: a table that is a symlink loop or unreadable is named, not skipped.
    return sorted(
        p for p in path.iterdir()
        if table_format(p) is not None and p.name not in ("labels.csv", "groups.csv") and not p.is_dir() and file_present(p)
    )


def _single_table(path: Path) -> Path:
    tables = _tables(path)
    if not tables:
        raise InvalidInputError(f"{path}: no .csv or .parquet table found")
    if len(tables) > 1:
        raise InvalidInputError(
            f"{path}: several tables ({', '.join(p.name for p in tables)}); pass the one to use as DATA"
        )
    return tables[0]


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir() if p.is_file())


#: How files that are not what their name says begin, for the error message.
_SIGNATURES = (
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"PK\x03\x04", "a zip archive (such as .npz)"),
    (b"PAR1", "a Parquet file"),
    (b"\x89PNG", "a PNG image"),
    (b"\x80", "a Python pickle"),
    (b"\x1f\x8b", "a gzip-compressed file"),
)


def _refuse_wrong_kind(path: Path, magic: bytes, what: str, expected: str) -> None:
    """Refuse a file that does not start with ``magic``, saying what it looks like instead."""
    head = read_head(path, 64)
    if head.startswith(magic):
        return
    if not head:
        looks = "the file is empty"
    else:
        kind = next((name for signature, name in _SIGNATURES if head.startswith(signature)), None)
        if kind is None:
            import codecs

            try:  # an incremental decoder leaves out a character cut at the end of the head
                text = codecs.getincrementaldecoder("utf-8")().decode(head)
            except UnicodeDecodeError:
                text = ""
            first = text.strip().splitlines()[0] if text.strip() else ""
            if first and all(ch.isprintable() or ch == "\t" for ch in first):
                kind = f"text ({first[:40]!r})"
        looks = f"it starts with {head[:16]!r}" + (f", like {kind}" if kind else "")
    raise InvalidInputError(f"{path}: not {what}: {looks}; expected {expected}")


#: What ``np.load`` raises for a damaged file besides ``ValueError``: a short read, and
#: for the header, which is parsed as a Python literal, a ``SyntaxError`` (or the
#: tokenizer's ``TokenError`` when numpy retries it as a Python 2 header) and whatever a
#: dtype description that is any other literal makes numpy raise.
_DAMAGED_FILE_ERRORS = (OSError, EOFError, SyntaxError, TypeError, KeyError, IndexError)


@contextmanager
def _python2_headers_quietly() -> Iterator[None]:
    """No warning for a header numpy had to clean up (one written by Python 2, or damaged
    into looking like one): the array still reads, and stderr keeps to calaudit's lines."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Reading `.npy` or `.npz` file required additional header parsing")
        yield


def _load_npy(path: Path) -> np.ndarray:
    from tokenize import TokenError

    _refuse_wrong_kind(path, b"\x93NUMPY", "a .npy file", "an array written by numpy.save (np.save(path, array))")
    try:
        with _python2_headers_quietly():
            return np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        # Not "allow_pickle" alone: numpy's message about a header too large to parse safely names it too.
        if any(marker in str(exc) for marker in ("pickled (object) data", "Object arrays", "Python objects")):
            raise InvalidInputError(
                f"{path}: holds Python objects, which calaudit never unpickles; save a numeric or "
                "fixed-width string array (np.save with dtype float, int or str)"
            ) from None
        raise InvalidInputError(f"{path}: not a readable .npy array ({first_line(exc)})") from None
    except (*_DAMAGED_FILE_ERRORS, TokenError) as exc:
        raise InvalidInputError(f"{path}: not a readable .npy array ({first_line(exc)})") from None


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    import zipfile
    import zlib
    from tokenize import TokenError

    _refuse_wrong_kind(path, b"PK", "a .npz archive", "arrays written by numpy.savez (np.savez(path, name=array))")
    try:
        with _python2_headers_quietly(), np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "pickled (object) data" in str(exc) or "Object arrays" in str(exc):
            raise InvalidInputError(
                f"{path}: holds Python objects, which calaudit never unpickles; save numeric or string arrays"
            ) from None
        raise InvalidInputError(f"{path}: not a readable .npz archive ({first_line(exc)})") from None
    # zipfile: a damaged member is a BadZipFile, zlib.error or EOFError; an encrypted one a
    # RuntimeError; an unknown compression method NotImplementedError.
    except (*_DAMAGED_FILE_ERRORS, TokenError, zipfile.BadZipFile, zlib.error, RuntimeError,
            NotImplementedError) as exc:
        raise InvalidInputError(f"{path}: not a readable .npz archive ({first_line(exc)})") from None


def _load_arrays(path: Path, human: HumanData | None = None) -> Dataset:
    files = Digests()
    npy, npz = path / "features.npy", path / "features.npz"
    if file_present(npy):
        arrays = {"features": _load_npy(npy)}
        files.add(npy.name, npy)
        features_file = npy.name
    elif file_present(npz):
        arrays = _load_npz(npz)
        files.add(npz.name, npz)
        features_file = npz.name
    else:
        raise InvalidInputError(f"{path}: no features.npy or features.npz")
    n_rows = {name: (a.shape[0] if a.ndim else 0) for name, a in arrays.items() if name != "labels"}
    labels, label_file = _read_array_labels(path, arrays, files, optional=human is not None)
    arrays.pop("labels", None)
    if labels is None:  # no labels, but human votes: the plurality vote will be the label
        for name, rows in n_rows.items():
            if rows != human.values.shape[0]:
                raise InvalidInputError(
                    f"{human.source}: {human.values.shape[0]} rows of human labels but {name} has {rows} rows; "
                    "expected one row per data row, in the same order"
                )
    for name, rows in n_rows.items():
        if labels is not None and rows != labels.shape[0]:
            raise InvalidInputError(
                f"{path}: {name} has {rows} rows but {label_file} has {labels.shape[0]} labels; expected one label per row"
            )
    class_names, source = _class_names_file(path, per_row_labels=label_file == "labels.txt")
    dataset = ArrayDataset(
        path, "arrays", labels, Location(str(path / label_file), None, True), class_names, source,
        files=files, arrays=arrays, features_file=features_file,
    )
    return _with_human(dataset, human, "arrays")


def _read_array_labels(
    path: Path, arrays: dict[str, np.ndarray], files: Digests, *, optional: bool = False,
) -> tuple[np.ndarray | None, str]:
    """The per-row labels and the file they came from; ``(None, file name)`` when there
    are none and ``optional`` (human votes will give them)."""
    for name in _LABEL_FILES:
        file = path / name
        if not file_present(file):
            continue
        files.add(name, file)
        if name == "labels.npy":
            labels = np.asarray(_load_npy(file))
            if labels.ndim == 0:
                raise InvalidInputError(f"{file}: holds a single value (shape ()); expected one label per row")
            if labels.ndim != 1:
                labels = labels.reshape(labels.shape[0], int(np.prod(labels.shape[1:])))  # -1 fails on 0 rows
                if labels.shape[1] != 1:
                    raise InvalidInputError(f"{file}: expected one label per row, got shape {labels.shape}")
                labels = labels[:, 0]
            return labels, name
        if name == "labels.csv":
            return _labels_from_csv(file), name
        return _labels_from_text(file), name
    if "labels" in arrays:
        return np.asarray(arrays["labels"]).reshape(-1), "features.npz[labels]"
    if optional:
        return None, next(name for name in HUMAN_FILES if file_present(path / name))
    raise InvalidInputError(f"{path}: no labels; expected labels.npy, labels.csv or labels.txt beside the features "
                            "(or votes.npy / soft_labels.npy to take them from the plurality vote)")


def _labels_from_csv(file: Path) -> np.ndarray:
    import pandas as pd

    from .csv_reader import check_text_encoding

    check_text_encoding(file, what="CSV: one label per line, or a header with a 'label' column")
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, encoding="utf-8-sig", header=None)
    except UnicodeDecodeError:
        raise InvalidInputError(f"{file}: not UTF-8 text; expected a UTF-8 CSV with one label per row") from None
    except pd.errors.EmptyDataError:
        raise InvalidInputError(f"{file}: the file is empty; expected a label per row") from None
    except pd.errors.ParserError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(
            f"{file}: cannot parse CSV ({text}); expected one label per line, or a header with a 'label' column"
        ) from None
    except OSError as exc:
        raise InvalidInputError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    # A header is recognised by its 'label' column; otherwise every line is a label.
    header = [str(v).strip() for v in frame.iloc[0]]
    for separator, sep_name in ((";", "semicolon (;)"), ("\t", "tab")):
        if "label" not in header and any("label" == part.strip() for cell in header for part in cell.split(separator)):
            raise InvalidInputError(
                f"{file}: the header {', '.join(header[:8])!r} looks {sep_name}-separated, and calaudit reads "
                "comma-separated CSV: save it with commas (or one label per line)"
            )
    if "label" in header:
        values = frame.iloc[1:, header.index("label")].to_numpy(dtype=object)
    elif frame.shape[1] == 1:
        values = frame.iloc[:, 0].to_numpy(dtype=object)
    else:
        raise InvalidInputError(
            f"{file}: expected one label per line, or a header with a 'label' column; the first line is "
            f"{', '.join(header[:8])}"
        )
    return np.where(values == "", None, values)


def _labels_from_text(file: Path) -> np.ndarray:
    text = read_utf8(file, "one label per line")
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    values = np.array([line.strip() for line in lines], dtype=object)
    return np.where(values == "", None, values)


def _class_names_file(path: Path, *, per_row_labels: bool) -> tuple[tuple[str, ...] | None, str | None]:
    names = read_class_names_file(path / "classes.txt")
    if names is not None:
        return names, "classes.txt"
    if not per_row_labels:
        names = read_class_names_file(path / "labels.txt")
        if names is not None:
            return names, "labels.txt"
    return None, None


def _load_table(
    root: Path, file: Path, label_col: str, feature_cols: Sequence[str] | None,
    votes_cols: Sequence[str] | None = None, soft_cols: Sequence[str] | None = None,
    human_file: HumanData | None = None,
) -> Dataset:
    import fnmatch

    from .csv_reader import read_text_columns
    from .feature_table import load_feature_table
    from .prediction_columns import require_label_column

    frame, line_of = load_feature_table(file, label_col, label_optional=True)
    columns = [str(c) for c in frame.columns]
    # Feature columns named plainly are features; a glob (or the default, every other
    # column) leaves the human-label columns out.
    reserved = {label_col: "the label column"}
    reserved.update({name: "the feature column" for name in feature_cols or () if not is_pattern(name)})
    chosen = select_human_columns(str(file), columns, votes_cols=votes_cols, soft_cols=soft_cols, reserved=reserved)
    human = human_file
    if chosen is not None:
        if human_file is not None:
            raise InvalidInputError(
                f"{file}: human labels in columns {', '.join(chosen.columns[:4])} and in {human_file.source}; "
                "keep one of them"
            )
        location = Location(str(file), list(chosen.columns), True, line_of)
        cells = frame[list(chosen.columns)]
        raw_cell = None
        if table_format(file) != "parquet":  # the cell as written, not pandas' reading of it
            def raw_cell(row: int, col: int) -> object:
                return read_text_columns(file, [chosen.columns[col]])[row, 0]
        human = HumanData(chosen.kind, numbers_or_error(cells, location, chosen.kind, raw_cell), str(file),
                          chosen.columns, chosen.names, line_of)
    if label_col not in columns and human is None:
        require_label_column(str(file), columns, label_col)
    human_columns = set(chosen.columns) if chosen is not None else set()
    others = [c for c in frame.columns if c != label_col and c not in human_columns]
    if feature_cols:
        selected = []
        for pattern in feature_cols:
            matched = [c for c in others if fnmatch.fnmatchcase(c, pattern)] if any(ch in pattern for ch in "*?[") else (
                [pattern] if pattern in others else [])
            if not matched:
                raise InvalidInputError(f"{file}: no feature column matches {pattern!r}; columns are {', '.join(others[:12])}")
            selected += [c for c in matched if c not in selected]
    else:
        selected = others
    labels = frame[label_col].to_numpy() if label_col in columns else None
    if labels is not None and labels.dtype.kind in "OUS":
        labels = np.where(labels == "", None, labels.astype(object))
    directory = root if root.is_dir() else file.parent
    class_names, source = _class_names_file(directory, per_row_labels=False) if root.is_dir() else (None, None)
    files = Digests()
    files.add(file.name, file)
    dataset = TableDataset(
        file, "table", labels, Location(str(file), [label_col], True, line_of), class_names, source,
        files=files, frame=frame, feature_columns=selected,
    )
    if chosen is not None:
        dataset.human = human
        return dataset
    return _with_human(dataset, human, "table")
