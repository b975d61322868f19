"""What every data directory loader returns: labelled rows and their model inputs.

:mod:`calaudit.loaders.arrays`, :mod:`calaudit.loaders.datadir` (tables) and
:mod:`calaudit.loaders.images` (class folders) each build a :class:`Dataset`; this
module holds what they share, so that none imports another's internals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, Location
from ..files.info import Digests, file_present, read_head, utf16_problem

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class FeatureBatch:
    """Model inputs for a run of consecutive rows, and which of them could be read."""

    feeds: dict[str, np.ndarray]
    rows: np.ndarray  # 0-based indices of the rows in the batch (after skips)


@dataclass(frozen=True)
class HumanData:
    """Human labels read with the data (votes or soft labels), before they meet the
    model's classes: ``values`` (N, K) float64 numbers, one column per class.

    ``columns`` are the table's columns holding them and ``names`` the class each
    names (:mod:`calaudit.loaders.human_columns`); an array file (``votes.npy``) has
    neither: its columns are in the model's class order.
    """

    kind: str  # "votes" or "soft"
    values: np.ndarray
    source: str  # the file they came from
    columns: tuple[str, ...] | None = None
    names: tuple[str, ...] | None = None
    line_of: Callable[[int], int | None] | None = None


@dataclass
class Dataset:
    """Labelled rows to run a model over; subclasses know how to make its inputs.

    ``labels`` is ``None`` when the data holds no labels but human votes (``human``):
    the labels are then the plurality vote.
    """

    path: Path
    kind: str
    labels: np.ndarray | None
    label_location: Location
    class_names: tuple[str, ...] | None = None
    class_names_source: str | None = None
    row_ids: np.ndarray | None = None  # e.g. image paths, kept with saved predictions
    row_id_name: str = "row"
    files: Digests = field(default_factory=Digests)  # name -> sha256, hashed in the background
    skipped: list[str] = field(default_factory=list)
    human: HumanData | None = None

    @property
    def n_rows(self) -> int:
        if self.labels is None and self.human is not None:
            return int(self.human.values.shape[0])
        return int(self.labels.shape[0])

    def batches(self, inputs: Sequence[Any], batch_size: int) -> Iterator[FeatureBatch]:
        raise NotImplementedError

    def numeric_features(self, rows: np.ndarray) -> np.ndarray | None:
        """The rows' features as one float matrix, when they are all numbers (else None)."""
        return None

    def feature_location(self, inputs: Sequence[Any], input_name: str, row: int, column: int) -> str:
        """Where the value fed to ``input_name`` for data row ``row`` (0-based) at flat
        position ``column`` of its row came from, for error messages."""
        which = f"{self.row_id_name} {self.row_ids[row]}" if self.row_ids is not None else f"row {row + 1}"
        return f"{self.path}: {which}, value {column + 1} of the model input {input_name!r}"

    def describe(self) -> dict[str, Any]:
        info = {"path": str(self.path), "format": self.kind, "rows": self.n_rows, "files": self.files.result(),
                "class_names_source": self.class_names_source}
        if self.human is not None:
            info["human_labels"] = {"kind": self.human.kind, "source": self.human.source,
                                    "columns": list(self.human.columns) if self.human.columns else None}
        return info


def read_class_names_file(path: Path) -> tuple[str, ...] | None:
    """``classes.txt``: one class name per line, in the model's output order.

    The names remember their line numbers (:class:`calaudit.predictions.labels.ClassNames`), so a
    name given twice is reported with both lines where the names are used.
    """
    from ..predictions.labels import ClassNames

    if not file_present(path):
        return None
    text = read_utf8(path, "one class name per line")
    numbered = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not numbered:
        return None
    return ClassNames([name for _, name in numbered], where=str(path), unit="line",
                      positions=[number for number, _ in numbered])


def read_utf8(path: Path, expected: str) -> str:
    """A small text file's content; not UTF-8 (or unreadable) is one line naming the file."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        problem = utf16_problem(read_head(path))
        hint = f": {problem}; save it as UTF-8" if problem else ""
        raise InvalidInputError(f"{path}: not UTF-8 text{hint}; expected {expected}") from None
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot be read ({exc.strerror or exc}); expected {expected}") from None


def with_human(dataset: Dataset, human: HumanData | None, rows: str) -> Dataset:
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


def class_names_file(path: Path, *, per_row_labels: bool) -> tuple[tuple[str, ...] | None, str | None]:
    names = read_class_names_file(path / "classes.txt")
    if names is not None:
        return names, "classes.txt"
    if not per_row_labels:
        names = read_class_names_file(path / "labels.txt")
        if names is not None:
            return names, "labels.txt"
    return None, None
