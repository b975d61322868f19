"""The ``arrays`` layout of a data directory, and the NumPy files any layout may hold.

``features.npy`` (or ``features.npz`` whose keys are the model's input names) plus
labels in ``labels.npy`` / ``labels.csv`` / ``labels.txt`` (one per row) or a
``labels`` array inside the ``.npz``; ``votes.npy`` / ``soft_labels.npy`` hold human
labels beside a data directory of any layout (:func:`human_file`). Arrays are loaded
with ``allow_pickle=False``: a data file is never unpickled.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, Location, first_line
from ..files.info import Digests, file_present, read_head
from .dataset import Dataset, FeatureBatch, HumanData, class_names_file, read_utf8, with_human
from .features import cast_feature, fit_row_shape, numeric_matrix
from .human_columns import HUMAN_FILES

_LABEL_FILES = ("labels.npy", "labels.csv", "labels.txt")


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
        parts = [numeric_matrix(np.asarray(array)[rows]) for name, array in self.arrays.items() if name != "labels"]
        if not parts or any(part is None for part in parts):
            return None
        return np.concatenate(parts, axis=1)


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


def human_file(directory: Path) -> HumanData | None:
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


def load_arrays(path: Path, human: HumanData | None = None) -> Dataset:
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
    class_names, source = class_names_file(path, per_row_labels=label_file == "labels.txt")
    dataset = ArrayDataset(
        path, "arrays", labels, Location(str(path / label_file), None, True), class_names, source,
        files=files, arrays=arrays, features_file=features_file,
    )
    return with_human(dataset, human, "arrays")


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
