"""The one value every loader produces and the audit consumes.

Nothing downstream of :class:`Predictions` knows whether an ONNX model, a CSV or a
Parquet file was read: provenance travels in :class:`Source` as plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError, Location, show
from . import transforms
from .labels import encode_labels
from .validation import DEFAULT_ROW_SUM_TOLERANCE, check_probabilities, refuse_probabilities_as_logits

if TYPE_CHECKING:
    import pandas as pd

    from .human_labels import HumanLabels


@dataclass(frozen=True)
class Source:
    """Where predictions came from.

    ``kind`` is ``"arrays"`` (the Python API), ``"predictions-file"`` or ``"onnx"``;
    ``details`` holds kind-specific, JSON-ready provenance (columns read, model
    signature, execution provider, ...).
    """

    kind: str = "arrays"
    path: str | None = None
    sha256: str | None = None
    format: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "sha256": self.sha256, "format": self.format, **self.details}


@dataclass(frozen=True, eq=False)
class Predictions:
    """Validated predictions: ``y_true`` (N,) class indices and ``y_proba`` (N, K).

    ``y_proba`` is float64 with rows renormalised to sum to 1; both arrays are
    read-only. ``transform`` names what turned raw scores into probabilities
    (``"none"``, ``"softmax"``, ``"sigmoid"``); ``max_row_sum_deviation`` is the largest
    ``|row sum - 1|`` before renormalisation; ``clipped_values`` counts values within
    rounding of [0, 1] that were clipped into it. ``logits`` keeps the raw ``(N, K)``
    scores when they were logits (a sigmoid column ``z`` as ``[0, z]``), and
    ``features`` what a retraining baseline may learn from (``features_source`` says
    what). ``extra_columns`` keeps any other columns
    of a prediction file (ids, segments), row-aligned, for analyses that need them.
    ``human`` holds what annotators said about each row (vote counts or soft labels,
    :class:`calaudit.predictions.human_labels.HumanLabels`), in the same class order, when given.
    """

    y_true: np.ndarray
    y_proba: np.ndarray
    class_names: tuple[str, ...]
    source: Source = field(default_factory=Source)
    transform: str = transforms.NO_TRANSFORM
    max_row_sum_deviation: float = 0.0
    clipped_values: int = 0
    extra_columns: pd.DataFrame | None = None
    logits: np.ndarray | None = None
    features: np.ndarray | None = None
    features_source: str = ""
    human: HumanLabels | None = None

    @property
    def n_samples(self) -> int:
        return int(self.y_proba.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.y_proba.shape[1])

    @classmethod
    def from_arrays(
        cls,
        y_true: Sequence[Any] | np.ndarray,
        y_proba: Sequence[Any] | np.ndarray,
        *,
        class_names: Sequence[object] | None = None,
        logits: bool = False,
        row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE,
        source: Source | None = None,
        proba_location: Location | None = None,
        label_location: Location | None = None,
        extra_columns: pd.DataFrame | None = None,
        applied_transform: str | None = None,
        owned: bool = False,
    ) -> Predictions:
        """Validate raw arrays and build :class:`Predictions`.

        ``y_proba`` is ``(N, K)`` with ``K >= 2``, or ``(N,)`` / ``(N, 1)`` positive-class
        scores of a binary model, widened to ``[1 - s, s]``. With ``logits=True`` the
        scores are logits: softmax for ``K >= 2`` columns, sigmoid for one. ``y_true``
        holds class indices or class names (see :func:`calaudit.predictions.labels.encode_labels`).
        ``applied_transform`` records a transform a loader already applied. ``owned``
        says ``y_proba`` is a float64 matrix nobody else holds (a loader's own), so
        validation may clip and renormalise it in place instead of copying it.
        """
        proba_location = proba_location or Location("y_proba")
        label_location = label_location or Location("y_true")
        scores = _as_float_matrix(y_proba, proba_location)
        n_rows = scores.shape[0]
        transform = applied_transform or transforms.NO_TRANSFORM
        raw_logits = None
        fresh = owned  # a matrix made here (or handed over) may be renormalised in place
        if logits:
            refuse_probabilities_as_logits(scores, location=proba_location, row_sum_tolerance=row_sum_tolerance)
            raw_logits = logit_matrix(scores)
            scores, transform = to_probabilities(scores, location=proba_location)
            fresh = True
        clipped = 0
        if scores.shape[1] == 1:
            # Validate the score before widening, so errors name the score column.
            single = check_probabilities(scores, location=proba_location, check_row_sums=False)
            scores, clipped = widen_binary(single.proba), single.clipped_values
            proba_location = Location(proba_location.source, None, proba_location.is_file, proba_location.line_of)
            fresh = True
        in_place = fresh and scores.flags.writeable and scores.dtype == np.float64
        checked = check_probabilities(scores, location=proba_location, row_sum_tolerance=row_sum_tolerance,
                                      in_place=in_place)
        proba, max_deviation = checked.proba, checked.max_row_sum_deviation
        clipped += checked.clipped_values
        n_classes = proba.shape[1]
        names = _class_names(class_names, n_classes, proba_location)
        labels = y_true if isinstance(y_true, np.ndarray) else np.asarray(list(y_true), dtype=object)
        if labels.ndim != 1:
            raise InvalidInputError(f"{label_location.source}: expected a 1-D array of labels, got shape {labels.shape}")
        if labels.shape[0] != n_rows:
            raise InvalidInputError(
                f"{label_location.source} has {labels.shape[0]} labels but {proba_location.source} has "
                f"{n_rows} rows; expected one label per row"
            )
        y = _read_only(encode_labels(labels, names, location=label_location).astype(np.intp, copy=False))
        proba = _read_only(np.ascontiguousarray(proba, dtype=np.float64))
        return cls(y, proba, names, source or Source(), transform, max_deviation, clipped, extra_columns, raw_logits)


def to_probabilities(logits: np.ndarray, *, location: Location) -> tuple[np.ndarray, str]:
    """Softmax of ``(N, K)`` logits, or sigmoid of one column; the transform's name."""
    finite = np.isfinite(logits)
    if not finite.all():
        row, col = divmod(int(np.argmax(~finite.ravel())), logits.shape[1])
        raise InvalidInputError(f"{location.cell(row, col)}: logit {show(logits[row, col])} is not a finite number")
    if logits.shape[1] == 1:
        return transforms.sigmoid(logits), transforms.SIGMOID
    return transforms.softmax(logits), transforms.SOFTMAX


def logit_matrix(logits: np.ndarray) -> np.ndarray:
    """Logits as ``(N, K)``: a single sigmoid column ``z`` becomes ``[0, z]`` (same softmax)."""
    if logits.shape[1] == 1:
        return np.column_stack([np.zeros(logits.shape[0]), logits[:, 0]])
    return np.asarray(logits, dtype=np.float64)  # kept as read; nothing writes to it


def widen_binary(scores: np.ndarray) -> np.ndarray:
    """``(N, 1)`` positive-class probabilities ``s`` -> ``[1 - s, s]``."""
    return np.column_stack([1.0 - scores[:, 0], scores[:, 0]])


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view: freezes the data for this value without touching the caller's array."""
    view = array.view()
    view.flags.writeable = False
    return view


def _as_float_matrix(values: Sequence[Any] | np.ndarray, location: Location) -> np.ndarray:
    try:
        # C order: row sums then add up in the same order whatever the source's layout
        # (a DataFrame hands over column-major arrays), so results are reproducible.
        scores = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{location.source}: expected numeric scores ({exc})") from None
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.ndim != 2:
        raise InvalidInputError(f"{location.source}: expected an (N, K) matrix of probabilities, got shape {scores.shape}")
    if scores.shape[0] == 0:
        raise InvalidInputError(f"{location.source}: no rows; expected at least one prediction")
    return scores


def _class_names(class_names: Sequence[object] | None, n_classes: int, location: Location) -> tuple[str, ...]:
    if class_names is None:
        return tuple(str(k) for k in range(n_classes))
    names = tuple(str(name) for name in class_names)
    if len(names) != n_classes:
        raise InvalidInputError(
            f"{location.source}: {len(names)} class names given for {n_classes} probability columns"
        )
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise InvalidInputError(f"{location.source}: class name {duplicate!r} appears twice; names must be unique")
    return names
