"""``calaudit run model.onnx data/``: run a vendor model over a data directory.

Ends, like every loader, in :class:`calaudit.Predictions`; provenance (model
signature, provider, preprocessing, how scores became probabilities) travels in its
:class:`calaudit.predictions.Source`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, Location, UsageError, show
from ..onnx.model import VendorModel, class_names_from_sources, load_model
from ..onnx.scores import decide_logits
from ..predictions.human_labels import HumanLabels
from ..predictions.transforms import NO_TRANSFORM
from ..predictions.validation import DEFAULT_ROW_SUM_TOLERANCE
from ..predictions.value import Predictions, Source, logit_matrix, to_probabilities, widen_binary
from .datadir import load_data_directory
from .dataset import Dataset, HumanData
from .human_columns import HumanColumns, human_details, human_labels, plurality_label_indices

DEFAULT_BATCH_SIZE = 256


@dataclass
class ModelSetup:
    """A model opened over its data, before any row is scored: what the in-memory run
    (:func:`load_model_predictions`) and the streamed one (:mod:`calaudit.engine.scoring`)
    both start from."""

    model: VendorModel
    dataset: Dataset
    score_output: Any  # calaudit.onnx.model.ScoreOutput


def open_model_run(
    model_path: str | Path,
    data_path: str | Path,
    *,
    device: str = "auto",
    output: str | None = None,
    data_format: str = "auto",
    label_col: str = "label",
    feature_cols: Sequence[str] | None = None,
    preprocess: dict[str, Any] | None = None,
    skip_bad_images: bool = False,
    allow_large_images: bool = False,
    warn: Callable[[str], None] | None = None,
    votes_cols: Sequence[str] | None = None,
    soft_cols: Sequence[str] | None = None,
    model: VendorModel | None = None,
) -> ModelSetup:
    """Load the model (unless ``model`` is given), read the data directory's labels and
    layout (features are read per batch) and choose the output holding the scores."""
    model = model or load_model(model_path, device=device)
    dataset = load_data_directory(
        data_path, data_format=data_format, label_col=label_col, feature_cols=feature_cols,
        preprocess=preprocess, skip_bad_images=skip_bad_images, allow_large_images=allow_large_images,
        model=model, warn=warn, votes_cols=votes_cols, soft_cols=soft_cols,
    )
    return ModelSetup(model, dataset, model.choose_score_output(output))


def load_model_predictions(
    model_path: str | Path,
    data_path: str | Path,
    *,
    device: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    output: str | None = None,
    logits: bool = False,
    class_names: Sequence[str] | None = None,
    data_format: str = "auto",
    label_col: str = "label",
    feature_cols: Sequence[str] | None = None,
    preprocess: dict[str, Any] | None = None,
    skip_bad_images: bool = False,
    allow_large_images: bool = False,
    warn: Callable[[str], None] | None = None,
    row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE,
    progress: Callable[[int, int], None] | None = None,
    save_predictions: str | Path | None = None,
    want_features: bool = False,
    embedding_output: str | None = None,
    model: VendorModel | None = None,
    votes_cols: Sequence[str] | None = None,
    soft_cols: Sequence[str] | None = None,
    seed: int = 0,
) -> Predictions:
    """Run ``model_path`` over ``data_path`` and return validated predictions.

    ``save_predictions`` writes the probabilities (before row renormalisation) and the
    labels as a prediction file whose audit reproduces this one exactly.
    ``want_features`` keeps what a retraining baseline can learn from: the activations
    of the model's penultimate layer (``embedding_output`` names another tensor), else
    the data's numeric features. ``model`` passes an already loaded model (``calaudit
    fix`` edits the same one afterwards). Human labels with the data (``votes.npy``,
    ``soft_labels.npy``, or a table's ``votes_cols`` / ``soft_cols``) are matched to
    the model's classes and attached as ``Predictions.human``; a data directory with
    votes and no labels is labelled by the plurality vote (ties broken at random among
    the tied classes, seeded by ``seed``).
    """
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1; got {batch_size}")
    if save_predictions is not None:
        from ..files.output_paths import check_output_paths

        check_output_paths([("--save-predictions", save_predictions)],
                           [("the model", model_path), ("the data", data_path)])
    setup = open_model_run(
        model_path, data_path, device=device, output=output, data_format=data_format, label_col=label_col,
        feature_cols=feature_cols, preprocess=preprocess, skip_bad_images=skip_bad_images,
        allow_large_images=allow_large_images, warn=warn, votes_cols=votes_cols, soft_cols=soft_cols, model=model,
    )
    model, dataset, score_output = setup.model, setup.dataset, setup.score_output
    embedding = None
    if want_features:
        embedding = embedding_output or model.penultimate_tensor(score_output.fetch)
        if embedding is not None and not model.expose(embedding):
            if embedding_output:
                raise InvalidInputError(f"{model.path}: --embedding-output {embedding_output!r} cannot be read from the graph")
            embedding = None
    run = run_model(model, dataset, score_output, batch_size, progress, embedding=embedding)
    scores, kept, batch_used = run.scores, run.rows, run.batch_size
    where = str(model.path)
    use_logits, reason = decide_logits(
        scores, output_name=score_output.name, logits_flag=logits, row_sum_tolerance=row_sum_tolerance, where=where
    )
    names, names_source, notes = resolve_class_names(setup, scores.shape[1], class_names)
    human = None
    if dataset.human is not None:
        human = _human_labels(dataset.human, names, names_source, row_sum_tolerance).take(kept)
    if dataset.labels is not None:
        labels = dataset.labels[kept]
    else:  # votes and no labels: the plurality vote is the label
        human, plurality = plurality_label_indices(human, seed, names, scores)
        labels = np.asarray(names, dtype=object)[plurality]
    row_ids = dataset.row_ids[kept] if dataset.row_ids is not None else kept + 1
    import pandas as pd

    details = run_details(setup, use_logits=use_logits, reason=reason, columns=int(scores.shape[1]),
                          names_source=names_source, notes=notes, batch_size=batch_used)
    details.update(human_details(human))
    raw_logits = logit_matrix(scores) if use_logits else None
    scores, transform = probability_matrix(scores, use_logits, Location(where, None, True))
    predictions = validated_predictions(
        labels, scores, names, names_source, row_sum_tolerance=row_sum_tolerance,
        source=Source("onnx", str(model.path), model.sha256, "onnx", details),
        extra_columns=pd.DataFrame({dataset.row_id_name: row_ids}),
        label_location=dataset.label_location, applied_transform=transform,
    )
    if human is not None:
        predictions = dataclasses.replace(predictions, human=human)
    if raw_logits is not None or want_features:
        features, features_source = None, ""
        if want_features and run.embedding is not None:
            features = run.embedding
            features_source = f"the activations of the model's layer {embedding!r} (the vendor's network, head retrained)"
        elif want_features:
            features = dataset.numeric_features(kept)
            features_source = "the data directory's features" if features is not None else ""
        predictions = dataclasses.replace(predictions, logits=raw_logits, features=features,
                                          features_source=features_source)
    if save_predictions is not None:
        from ..files.prediction_file import save_prediction_file

        # The matrix before renormalisation: reading it back repeats the same
        # validation and division, so the audit of the file is bit-for-bit this one.
        save_prediction_file(save_predictions, predictions, proba=scores)
    return predictions


def resolve_class_names(
    setup: ModelSetup, n_score_columns: int, class_names: Sequence[str] | None,
) -> tuple[tuple[str, ...], str, list[str]]:
    """The model's class names for ``n_score_columns`` columns of scores (one column is a
    binary model's positive class: two names), where they came from, and notes on the
    sources skipped. ``class_names`` (``--classes``) wins when given."""
    model, dataset, score_output = setup.model, setup.dataset, setup.score_output
    n_columns = 2 if n_score_columns == 1 else n_score_columns
    if class_names is not None:
        if len(class_names) != n_columns:
            raise UsageError(f"--classes names {len(class_names)} classes but the model emits {n_columns}")
        return tuple(class_names), "--classes", []
    sources: list[tuple[str, Sequence[str] | None]] = [
        ("ZipMap keys", score_output.class_labels),
        ("the model's classifier node (classlabels)", model.graph_class_labels()),
        ("the model's metadata", model.metadata_class_names()),
        (dataset.class_names_source or "the data directory", dataset.class_names),
    ]
    return class_names_from_sources(n_columns, sources)


def run_details(
    setup: ModelSetup, *, use_logits: bool, reason: str, columns: int, names_source: str, notes: list[str],
    batch_size: int,
) -> dict[str, Any]:
    """What ``source`` records of a model run (after it: an image folder's description
    counts the images read)."""
    model, dataset, score_output = setup.model, setup.dataset, setup.score_output
    return {
        "model": model.provenance(),
        "data": dataset.describe(),
        "scores": {
            "output": score_output.name,
            "output_choice": score_output.reason,
            "read_from": score_output.fetch,
            "treated_as": "logits" if use_logits else "probabilities",
            "columns": columns,
            "reason": reason,
        },
        "class_names_source": names_source,
        "notes": notes,
        "batch_size": batch_size,
    }


def probability_matrix(scores: np.ndarray, use_logits: bool, location: Location) -> tuple[np.ndarray, str]:
    """Scores as an ``(n, K >= 2)`` probability matrix before validation: softmax (or the
    sigmoid of one column) of logits, and one column ``s`` widened to ``[1 - s, s]``;
    with the transform applied."""
    transform = NO_TRANSFORM
    if use_logits:
        scores, transform = to_probabilities(scores, location=location)
    if scores.shape[1] == 1:
        scores = widen_binary(scores)
    return scores, transform


def validated_predictions(
    labels: np.ndarray, scores: np.ndarray, names: Sequence[str], names_source: str, **options: Any,
) -> Predictions:
    """:meth:`Predictions.from_arrays` of a model's scores; a label the model's classes do
    not name says where the class names came from and how to fix it."""
    try:
        return Predictions.from_arrays(labels, scores, class_names=names, **options)
    except InvalidInputError as exc:
        if "is not one of the" in str(exc):
            from_model = names_source in ("ZipMap keys", "the model's classifier node (classlabels)", "the model's metadata")
            remedy = (
                "the data's labels must use those names (or pass --classes to name the model's outputs yourself)"
                if from_model
                else "put the model's class names in classes.txt, one per line in output order, or pass --classes"
            )
            raise InvalidInputError(f"{exc}; the model's classes came from {names_source}: {remedy}") from None
        raise


def _human_labels(human: HumanData, names: Sequence[str], names_source: str, row_sum_tolerance: float) -> HumanLabels:
    """The data's human labels in the model's class order, validated (every data row)."""
    if human.columns is not None:  # a table's columns, named by class
        source = f"{human.source} (the model's classes came from {names_source})"
        ordered = HumanColumns(human.kind, human.columns, human.names).class_order(names, source)
        values = human.values[:, [human.columns.index(column) for column in ordered]]
        location = Location(human.source, ordered, True, human.line_of)
        return human_labels(values, human.kind, location=location, row_sum_tolerance=row_sum_tolerance)
    # An array file: one column per model output, in the model's order.
    if human.values.shape[1] != len(names):
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise InvalidInputError(
            f"{human.source}: shape {human.values.shape}, {human.values.shape[1]} columns; expected one column per "
            f"class of the model ({len(names)}: {shown}), in its output order"
        )
    location = Location(human.source, [f"{k + 1} (class {name})" for k, name in enumerate(names)], True)
    labels = human_labels(human.values, human.kind, location=location, row_sum_tolerance=row_sum_tolerance)
    return dataclasses.replace(labels, columns=(Path(human.source).name,))


@dataclass(frozen=True)
class ModelRun:
    scores: np.ndarray  # (n, K) float64
    rows: np.ndarray  # indices of the rows that could be read
    batch_size: int
    embedding: np.ndarray | None = None  # (n, F) activations of an extra tensor, if asked


@dataclass(frozen=True)
class ScoredBatch:
    """The scores of one inference batch: ``scores`` ``(n, K)`` float64 as the model
    output them (finite, one row per data row read), ``rows`` the 0-based data rows they
    belong to, and ``embedding`` the extra tensor's ``(n, F)`` activations when asked."""

    scores: np.ndarray
    rows: np.ndarray
    embedding: np.ndarray | None = None


def inference_batch_size(model: VendorModel, batch_size: int) -> int:
    """Rows per inference call: the batch size the model's inputs fix, else ``batch_size``."""
    fixed = {spec.fixed_batch for spec in model.inputs} - {None}
    if len(fixed) > 1:
        raise InvalidInputError(f"{model.path}: the inputs fix different batch sizes ({sorted(fixed)})")
    return fixed.pop() if fixed else batch_size


def score_batches(
    model: VendorModel,
    dataset: Dataset,
    score_output: Any,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
    embedding: str | None = None,
) -> Iterator[ScoredBatch]:
    """Run the model over ``dataset`` one inference batch at a time and yield each
    batch's checked scores; the one loop the in-memory run (:func:`run_model`) and the
    streamed one (:mod:`calaudit.engine.scoring`) share.

    A model whose inputs fix the batch dimension gets batches of exactly that size
    (a batch of 1 is fed row by row; a last partial batch is padded and trimmed).
    Each batch is checked as it comes: one output row per input row, the same number of
    score columns as the first batch, and finite scores (a row whose features are not
    finite either blames the data, else the model, naming the data row). Raises
    :class:`InvalidInputError` when no row could be read.
    """
    step = inference_batch_size(model, batch_size)
    pads = any(spec.fixed_batch is not None for spec in model.inputs)
    fetches = [score_output.fetch] + ([embedding] if embedding else [])
    width = None
    for batch in dataset.batches(model.inputs, step):
        n = batch.rows.shape[0]
        feeds = batch.feeds
        if pads and n < step:
            feeds = {name: _pad(array, step) for name, array in feeds.items()}
        try:
            outputs = model.run_many(fetches, feeds) if embedding else [model.run(score_output.fetch, feeds)]
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidInputError(
                f"{model.path}: onnxruntime failed on rows {int(batch.rows[0]) + 1}-{int(batch.rows[-1]) + 1}: "
                f"{_clean(first)}; the model expects {', '.join(s.describe() for s in model.inputs)}"
            ) from None
        fed = next(iter(feeds.values())).shape[0] if feeds else n
        _check_output_rows(model, score_output.name, outputs[0], fed, batch.rows)
        chunk = _score_matrix(outputs[0], score_output)[:n]
        if width is None:
            width = chunk.shape[1]
        elif chunk.shape[1] != width:
            raise InvalidInputError(
                f"{model.path}: output {score_output.name!r} changed width between batches "
                f"({sorted({width, chunk.shape[1]})})"
            )
        _check_finite_inputs(model, dataset, score_output.name, chunk, batch)
        _check_finite_scores(model, dataset, score_output.name, chunk, batch.rows)
        activations = None
        if embedding:
            _check_output_rows(model, embedding, outputs[1], fed, batch.rows)
            activations = np.asarray(outputs[1], dtype=np.float64).reshape(len(outputs[1]), -1)[:n]
        if progress is not None:
            progress(n, dataset.n_rows)
        yield ScoredBatch(chunk.astype(np.float64, copy=False), batch.rows, activations)
    if width is None:
        raise InvalidInputError(f"{dataset.path}: no rows could be read")


def run_model(
    model: VendorModel,
    dataset: Dataset,
    score_output: Any,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
    embedding: str | None = None,
) -> ModelRun:
    """Scores of every readable row (and the ``embedding`` tensor's activations), held in
    memory: :func:`score_batches` concatenated."""
    batches = list(score_batches(model, dataset, score_output, batch_size, progress, embedding=embedding))
    return ModelRun(
        np.concatenate([batch.scores for batch in batches]), np.concatenate([batch.rows for batch in batches]),
        inference_batch_size(model, batch_size),
        np.concatenate([batch.embedding for batch in batches]) if embedding else None,
    )


def _check_output_rows(model: VendorModel, name: str, raw: Any, fed: int, rows: np.ndarray) -> None:
    """One row of output per row fed: anything else would be cut or misaligned silently."""
    got = len(raw) if isinstance(raw, list) else (np.shape(raw)[0] if np.ndim(raw) else None)
    if got == fed:
        return
    what = "a single value" if got is None else f"{got} rows"
    raise InvalidInputError(
        f"{model.path}: output {name!r} returned {what} for a batch of {fed} input rows "
        f"(data rows {int(rows[0]) + 1}-{int(rows[-1]) + 1}); expected one row of scores per input row"
    )


def _check_finite_inputs(model: VendorModel, dataset: Dataset, name: str, scores: np.ndarray, batch: Any) -> None:
    """When a row's scores are not finite and its features are not either, blame the data.

    Missing features are not refused up front (tree models handle them); only when the
    output for such a row is NaN or infinite is the data named, with its row and
    column. Scores that are not finite for finite features are left to the checks of
    the scores, which blame the model.
    """
    bad = ~np.isfinite(scores).all(axis=1)
    if not bad.any():
        return
    n = scores.shape[0]
    found: list[tuple[int, int, Any, np.ndarray]] = []  # (batch position, input, spec, its flat rows)
    for order, spec in enumerate(model.inputs):
        feed = np.asarray(batch.feeds[spec.name])
        if feed.dtype.kind not in "fc":
            continue
        flat = feed[:n].reshape(n, -1)
        explained = bad & ~np.isfinite(flat).all(axis=1)
        if explained.any():
            found.append((int(np.argmax(explained)), order, spec, flat))
    if not found:
        return
    position, _, spec, flat = min(found, key=lambda item: item[:2])
    column = int(np.argmax(~np.isfinite(flat[position])))
    row = int(batch.rows[position])
    output = scores[position][~np.isfinite(scores[position])][0]
    raise InvalidInputError(
        f"{dataset.feature_location(model.inputs, spec.name, row, column)} is {show(flat[position, column])}; "
        f"the model's output {name!r} for it is {show(output)} (expected finite features, or a model that "
        "handles missing values)"
    )


def _check_finite_scores(model: VendorModel, dataset: Dataset, name: str, scores: np.ndarray, rows: np.ndarray) -> None:
    """Scores that are not finite for finite features blame the model, naming the data row."""
    finite = np.isfinite(scores)
    if finite.all():
        return
    position, column = divmod(int(np.argmax(~finite.ravel())), scores.shape[1])
    row = int(rows[position])
    which = f"{dataset.row_id_name} {dataset.row_ids[row]}" if dataset.row_ids is not None else f"row {row + 1}"
    raise InvalidInputError(
        f"{model.path}: output {name!r} gave {show(scores[position, column])} for {which}, column {column}; "
        "expected finite scores"
    )


def _pad(array: np.ndarray, size: int) -> np.ndarray:
    missing = size - array.shape[0]
    return np.concatenate([array, np.repeat(array[-1:], missing, axis=0)])


def _score_matrix(raw: Any, score_output: Any) -> np.ndarray:
    """One batch of the score output as an ``(n, K)`` float array."""
    if isinstance(raw, list):  # a ZipMap sequence of maps that could not be bypassed
        keys = list(score_output.class_labels or (raw[0].keys() if raw else []))
        lookup = [k if k in raw[0] else _key_like(k, raw[0]) for k in keys] if raw else keys
        return np.array([[row[k] for k in lookup] for row in raw], dtype=np.float64)
    array = np.asarray(raw, dtype=np.float64)
    if array.ndim == 1:
        return array[:, None]
    if array.ndim > 2:
        squeezed = array.reshape(array.shape[0], -1)
        return squeezed
    return array


def _key_like(name: str, row: dict) -> Any:
    for key in row:
        if str(key) == name:
            return key
    raise InvalidInputError(f"ZipMap output has no key {name!r}")


def _clean(text: str) -> str:
    import re

    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    return text[:300]
