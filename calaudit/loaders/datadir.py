"""Labelled data directories that a model is run over (docs/onnx.md, "Data directories").

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, Location, UsageError
from ..files.formats import table_format
from ..files.info import Digests, file_present, path_problem
from .arrays import human_file, load_arrays
from .dataset import IMAGE_SUFFIXES, Dataset, FeatureBatch, HumanData, class_names_file, with_human
from .features import cast_feature, fit_row_shape, numeric_matrix
from .human_columns import is_pattern, numbers_or_error, select_human_columns

DATA_FORMATS = ("auto", "arrays", "table", "images")


# ------------------------------------------------------------------ feature matrices


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
        return numeric_matrix(frame[numeric].to_numpy()[rows])

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
    kind = data_format if data_format != "auto" else detect_layout(path)
    if kind != "table" and (votes_cols or soft_cols):
        option = "--votes-cols" if votes_cols else "--soft-cols"
        raise UsageError(
            f"{option} names columns of a table, but {path} is read as {kind}: give its human labels in "
            "votes.npy or soft_labels.npy beside the data"
        )
    human = human_file(path)
    if kind == "arrays":
        return load_arrays(path, human)
    if kind == "table":
        return _load_table(path, single_table(path), label_col, feature_cols, votes_cols, soft_cols, human)
    from .images import load_image_folder

    dataset = load_image_folder(path, preprocess=preprocess, skip_bad_images=skip_bad_images,
                                allow_large_images=allow_large_images, model=model, warn=warn)
    return with_human(dataset, human, "images (one row per image, in the sorted order of the image list)")


def detect_layout(path: Path) -> str:
    names = {p.name for p in path.iterdir()}
    if "features.npy" in names or "features.npz" in names:
        return "arrays"
    if _tables(path):
        return "table"
    if any(child.is_dir() and _has_images(child) for child in path.iterdir()):
        return "images"
    raise InvalidInputError(
        f"{path}: no features.npy/.npz, no .csv/.parquet table and no class folders of images; "
        "expected one of the layouts of docs/onnx.md (Data directories)"
    )


def _tables(path: Path) -> list[Path]:
    # file_present: a table that is a symlink loop or unreadable is named, not skipped.
    return sorted(
        p for p in path.iterdir()
        if table_format(p) is not None and p.name not in ("labels.csv", "groups.csv") and not p.is_dir() and file_present(p)
    )


def single_table(path: Path) -> Path:
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
    class_names, source = class_names_file(directory, per_row_labels=False) if root.is_dir() else (None, None)
    files = Digests()
    files.add(file.name, file)
    dataset = TableDataset(
        file, "table", labels, Location(str(file), [label_col], True, line_of), class_names, source,
        files=files, frame=frame, feature_columns=selected,
    )
    if chosen is not None:
        dataset.human = human
        return dataset
    return with_human(dataset, human, "table")
