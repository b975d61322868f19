"""Scoring a data directory with a vendor ONNX model, batch by batch: ``calaudit run
model.onnx data/ --engine stream``.

:func:`open_model_scoring` opens the model over its data as the in-memory run does
(:func:`calaudit.loaders.model_run.open_model_run`: the same model, layout detection,
output choice and preprocessing); :meth:`ModelScoring.batches` then runs it with the
in-memory run's own loop (:func:`calaudit.loaders.model_run.score_batches`: inference
batches of ``--batch-size`` rows, padded for a fixed batch size, each checked as it
comes) and yields :class:`calaudit.engine.batch.Batch` es of at most ``batch_rows`` rows,
validated as the in-memory run validates the whole matrix: logits decided by the same
rule (:func:`calaudit.onnx.scores.decide_logits`, per batch: a batch that is no
probabilities is the same error), softmax or sigmoid, a single score widened, class
names from the same sources, the same clipping, renormalisation and label rules
(:meth:`calaudit.Predictions.from_arrays`). So
:func:`calaudit.engine.stream.stream_statistics` of the batches gives the in-memory
audit's equal-width figures, and neither the probability matrix nor the features are
ever held whole.

Memory: one inference batch of features (``features.npy`` is memory-mapped by the data
loader and read ``--batch-size`` rows at a time; an image folder decodes one batch of
files), plus a few copies (softmax, validation) of at most ``batch_rows + batch_size``
rows of scores. Nothing grows with the number of rows but what the data loaders hold
whatever the engine: the labels of ``labels.csv`` / ``labels.txt`` (``labels.npy`` is
memory-mapped), a table's whole frame (a CSV or Parquet table is read into memory:
large data belongs in ``features.npy``), a ``features.npz`` archive's arrays (numpy
decompresses a member whole), and an image folder's list of files.

Per batch, labels are read as a whole file's are (:func:`calaudit.predictions.labels.encode_labels`),
and each batch says how (:attr:`calaudit.engine.batch.Batch.labels_read_as`): a label
file using class names in one batch and class indices in another is refused, as one
batch mixing them is.

:func:`score_statistics` is the same scoring as a pure function of a row range, for one
task of a parallel reduction: it loads the model once per call and returns mergeable
:class:`~calaudit.engine.statistics.StreamStatistics`.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Location, UsageError
from ..loaders.dataset import IMAGE_SUFFIXES, Dataset, FeatureBatch
from ..loaders.model_run import (
    DEFAULT_BATCH_SIZE,
    ModelSetup,
    inference_batch_size,
    open_model_run,
    probability_matrix,
    resolve_class_names,
    run_details,
    score_batches,
    validated_predictions,
)
from ..onnx.scores import decide_logits
from ..predictions.labels import batch_reading
from ..predictions.transforms import NO_TRANSFORM
from ..predictions.validation import DEFAULT_ROW_SUM_TOLERANCE
from ..predictions.value import Source
from .batch import DEFAULT_BATCH_ROWS, Batch
from .budget import PEAK_FACTOR, default_memory_limit, format_size
from .statistics import FINE_BINS, StreamStatistics

#: The options of :func:`open_model_scoring` that open the model and its data.
OPEN_OPTIONS = ("device", "output", "data_format", "label_col", "feature_cols", "preprocess", "skip_bad_images",
                "allow_large_images", "warn")


@dataclass(frozen=True, eq=False)
class _BatchRows(Location):
    """A :class:`~calaudit.errors.Location` for a batch's rows: row ``i`` of the batch
    is data row ``rows[i]`` of the location it was made from (so messages name the data
    row, its line in a text file, as the in-memory run's do)."""

    rows: Any = None

    @classmethod
    def of(cls, base: Location, rows: np.ndarray) -> _BatchRows:
        return cls(base.source, base.columns, base.is_file, base.line_of, rows)

    def row(self, index: int) -> str:
        return super().row(int(self.rows[index]))


@dataclass(eq=False)
class ModelScoring:
    """A model opened over its data directory, to be scored batch by batch.

    The class names, the scores' treatment (``use_logits``, ``reason``) and the
    ``transform`` are known once the first batch is scored; :meth:`source` describes the
    run afterwards (what the in-memory run records in ``source``).
    """

    setup: ModelSetup
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_rows: int = DEFAULT_BATCH_ROWS
    logits: bool = False
    class_names_option: tuple[str, ...] | None = None
    row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE
    class_names: tuple[str, ...] | None = None
    names_source: str | None = None
    notes: list[str] = field(default_factory=list)
    columns: int | None = None
    use_logits: bool | None = None
    reason: str | None = None
    transform: str = NO_TRANSFORM
    _scored: Any = None  # the dataset (or its row range) last scored, for :meth:`source`

    @property
    def n_rows(self) -> int:
        """Rows of the data directory (images that cannot be read included)."""
        return self.setup.dataset.n_rows

    @property
    def inference_batch_size(self) -> int:
        return inference_batch_size(self.setup.model, self.batch_size)

    def batches(self, *, start: int = 0, stop: int | None = None, writer: Any = None) -> Iterator[Batch]:
        """Validated batches of data rows ``start`` to ``stop`` (0-based, ``stop``
        excluded; default: every row), at most ``batch_rows`` rows each.

        ``writer`` (a :class:`calaudit.engine.writer.PredictionFileWriter`, entered) is
        given every batch's rows as the in-memory ``--save-predictions`` writes them.
        Stops at the first error (one :class:`~calaudit.errors.InvalidInputError` line
        naming the data row), yielding nothing after it.
        """
        setup = self.setup
        dataset = _row_range(setup.dataset, start, stop)
        self._scored = dataset
        scored = score_batches(setup.model, dataset, setup.score_output, self.batch_size)
        for scores, rows in _rebatched(scored, self.batch_rows):
            yield self._validated(scores, rows, writer)

    def _validated(self, scores: np.ndarray, rows: np.ndarray, writer: Any) -> Batch:
        """One block of scores as a :class:`Batch`, checked as the in-memory run checks
        the whole matrix (:func:`calaudit.loaders.model_run.load_model_predictions`)."""
        setup = self.setup
        model, dataset, output = setup.model, setup.dataset, setup.score_output
        where = str(model.path)
        if self.columns is None:
            self.columns = int(scores.shape[1])
            self.class_names, self.names_source, self.notes = resolve_class_names(
                setup, self.columns, self.class_names_option)
        use_logits, reason = decide_logits(scores, output_name=output.name, logits_flag=self.logits,
                                           row_sum_tolerance=self.row_sum_tolerance, where=where)
        if self.use_logits is None:
            self.use_logits, self.reason = use_logits, reason
        location = _BatchRows(where, None, True, None, rows)
        proba, self.transform = probability_matrix(scores, use_logits, location)
        labels = dataset.labels[rows]
        label_location = _BatchRows.of(dataset.label_location, rows)
        predictions = validated_predictions(
            labels, proba, self.class_names, self.names_source, row_sum_tolerance=self.row_sum_tolerance,
            proba_location=location, label_location=label_location,
            applied_transform=self.transform,
            owned=writer is None,  # the writer needs the matrix before renormalisation
        )
        if writer is not None:
            row_ids = dataset.row_ids[rows] if dataset.row_ids is not None else rows + 1
            writer.write(row_ids, np.asarray(self.class_names, dtype=object)[predictions.y_true], proba,
                         class_names=self.class_names, row_id_name=dataset.row_id_name)
        reading = batch_reading(labels, predictions.y_true, self.class_names, label_location,
                                file=str(dataset.path), row=int(rows[0]))
        return Batch(predictions.y_true, predictions.y_proba, str(dataset.path), 0, int(rows[0]),
                     predictions.max_row_sum_deviation, predictions.clipped_values, labels_read_as=reading)

    #: What scoring found out (:meth:`facts`), enough to describe a run scored elsewhere.
    FACTS = ("columns", "class_names", "names_source", "notes", "use_logits", "reason", "transform")

    def facts(self) -> dict[str, Any]:
        """What the batches scored so far found out (output width, class names and where
        they came from, logits or not and why): :meth:`adopt` on another scoring of the
        same model and data (the client of a Dask run) lets its :meth:`source` describe
        the whole run."""
        return {name: getattr(self, name) for name in self.FACTS}

    def adopt(self, facts: dict[str, Any]) -> None:
        """Take the :meth:`facts` of a scoring of the same model and data."""
        for name in self.FACTS:
            setattr(self, name, facts[name])

    def source(self) -> dict[str, Any]:
        """The result's ``source`` after a run, as the in-memory model run records it."""
        if self.columns is None:
            raise RuntimeError("ModelScoring.source() before any batch was scored")
        setup = ModelSetup(self.setup.model, self._scored or self.setup.dataset, self.setup.score_output)
        details = run_details(setup, use_logits=bool(self.use_logits), reason=self.reason or "",
                              columns=self.columns, names_source=self.names_source or "", notes=self.notes,
                              batch_size=self.inference_batch_size)
        model = self.setup.model
        return Source("onnx", str(model.path), model.sha256, "onnx", details).to_dict()


def open_model_scoring(
    model_path: str | Path,
    data_path: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    logits: bool = False,
    class_names: Sequence[str] | None = None,
    row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE,
    **options: Any,
) -> ModelScoring:
    """Open ``model_path`` over the data directory ``data_path`` for :meth:`ModelScoring.batches`.

    ``options`` are those of :func:`calaudit.loaders.model_run.load_model_predictions`
    that open the model and the data (:data:`OPEN_OPTIONS`: ``device``, ``output``,
    ``data_format``, ``label_col``, ``feature_cols``, ``preprocess``, ...). Human labels
    with the data (``votes.npy``, ``soft_labels.npy``) are a usage error: a streamed
    audit does not analyse them yet.
    """
    unknown = sorted(set(options) - set(OPEN_OPTIONS))
    if unknown:
        raise TypeError(f"open_model_scoring() got unexpected options {', '.join(unknown)}")
    for name, value in (("batch_size", batch_size), ("batch_rows", batch_rows)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise UsageError(f"{name} is {value!r}; expected a whole number of rows, at least 1")
    setup = open_model_run(model_path, data_path, **options)
    human = setup.dataset.human
    if human is not None:
        raise UsageError(f"{human.source}: human labels are not available in a streamed audit yet; audit in memory "
                         "(--engine memory) for them")
    return ModelScoring(setup, int(batch_size), int(batch_rows), bool(logits),
                        tuple(class_names) if class_names else None, float(row_sum_tolerance))


def score_statistics(
    model_path: str | Path,
    data_path: str | Path,
    start: int = 0,
    stop: int | None = None,
    *,
    n_bins: int,
    fine_bins: int = FINE_BINS,
    check_labels: bool = True,
    routing: bool = False,
    **options: Any,
) -> tuple[StreamStatistics, dict[str, Any]]:
    """Score data rows ``start`` to ``stop`` (0-based, ``stop`` excluded; ``None``: to
    the end) and return their mergeable statistics and what the run did: a pure function
    of its arguments for one task of a parallel reduction (the model is loaded once per
    call; nothing is shared between calls).

    ``options`` are :func:`open_model_scoring`'s; ``check_labels`` as for
    :func:`calaudit.engine.stream.stream_statistics`. ``info`` holds
    :func:`calaudit.engine.stream.stream_statistics`'s (batches, largest batch, largest
    row-sum deviation, clipped values) plus ``rows`` (``[start, stop]``),
    ``class_names``, ``transform`` and ``source``; the partitions of one run agree on
    the class names and the transform (the client checks that when it merges). With
    ``routing``, ``info["routing_bins"]`` holds the rows' counts per fine confidence bin
    (:class:`calaudit.engine.routing_bins.RoutingHistogram`).
    A partition of a table is a usage error: a table is read whole (score it in one
    call), arrays and image folders are read by row range.
    """
    from .stream import stream_statistics

    scoring = open_model_scoring(model_path, data_path, **options)
    batches = scoring.batches(start=start, stop=stop)
    histogram = None
    if routing:
        from .routing_bins import RoutingHistogram

        histogram = RoutingHistogram()
    statistics, info = stream_statistics(batches, n_bins=n_bins, fine_bins=fine_bins, check_labels=check_labels,
                                         routing=histogram)
    if histogram is not None:
        info["routing_bins"] = histogram
    info.update(rows=[int(start), int(stop if stop is not None else scoring.n_rows)],
                class_names=list(scoring.class_names or ()), transform=scoring.transform, source=scoring.source(),
                facts=scoring.facts())
    return statistics, info


# ---------------------------------------------------------------------- batches


def _rebatched(scored: Iterator[Any], batch_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Inference batches regrouped into blocks of exactly ``batch_rows`` rows (the last
    one shorter): ``(scores, rows)``. Holds at most ``batch_rows`` plus one inference
    batch of scores."""
    held_scores: list[np.ndarray] = []
    held_rows: list[np.ndarray] = []
    held = 0
    for batch in scored:
        held_scores.append(batch.scores)
        held_rows.append(batch.rows)
        held += batch.rows.shape[0]
        while held >= batch_rows:
            scores, rows = _joined(held_scores), _joined(held_rows)
            yield scores[:batch_rows], rows[:batch_rows]
            held_scores, held_rows = [scores[batch_rows:]], [rows[batch_rows:]]
            held -= batch_rows
    if held:
        yield _joined(held_scores), _joined(held_rows)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


class _RowRange:
    """Rows ``start`` to ``stop`` of a dataset, read as the whole one is: the batches of
    a copy holding only those rows, numbered as rows of the whole (its labels, row ids
    and messages)."""

    def __init__(self, whole: Dataset, part: Dataset, start: int) -> None:
        self.whole, self.part, self.start = whole, part, start

    def batches(self, inputs: Sequence[Any], batch_size: int) -> Iterator[FeatureBatch]:
        for batch in self.part.batches(inputs, batch_size):
            yield FeatureBatch(batch.feeds, batch.rows + self.start)

    @property
    def n_rows(self) -> int:
        return self.part.n_rows

    def describe(self) -> dict[str, Any]:
        return {**self.part.describe(), "row_range": [self.start, self.start + self.part.n_rows]}

    def __getattr__(self, name: str) -> Any:  # path, labels, row_ids, feature_location, ...
        return getattr(self.whole, name)


def _row_range(dataset: Dataset, start: int, stop: int | None) -> Any:
    """``dataset`` itself for every row, else a :class:`_RowRange` of rows ``start:stop``."""
    n_rows = dataset.n_rows
    stop = n_rows if stop is None else stop
    for name, value in (("start", start), ("stop", stop)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise UsageError(f"{name} is {value!r}; expected a row number")
    if not 0 <= start < stop <= n_rows:
        raise UsageError(f"rows {start} to {stop}: expected 0 <= start < stop <= {n_rows:,} "
                         f"(the rows of {dataset.path})")
    if start == 0 and stop == n_rows:
        return dataset
    part = copy.copy(dataset)
    part.labels = dataset.labels[start:stop]
    if dataset.row_ids is not None:
        part.row_ids = dataset.row_ids[start:stop]
    if dataset.kind == "arrays":
        part.arrays = {name: array[start:stop] for name, array in dataset.arrays.items()}
    elif dataset.kind == "images":
        part.image_files = dataset.image_files[start:stop]
        part.skipped, part.warnings, part.image_sizes = [], [], Counter()
    else:
        raise UsageError(f"{dataset.path}: a {dataset.kind} is read whole; score it in one partition (rows 0 to "
                         f"{n_rows:,}), or save its features as features.npy to score row ranges")
    # The copy's own messages (a value its input cannot take) name the whole's row.
    part.feature_location = lambda inputs, name, row, column: dataset.feature_location(  # type: ignore[method-assign]
        inputs, name, row + start, column)
    return _RowRange(dataset, part, start)


# ---------------------------------------------------------------------- the memory budget


def estimated_model_audit_bytes(
    model_path: str | Path, data_path: str | Path, *, data_format: str = "auto",
) -> int | None:
    """The estimated peak memory of the in-memory audit of a model run: rows x classes x
    8 bytes x :data:`calaudit.engine.budget.PEAK_FACTOR` (the float64 scores, held about
    three times over). Read without running the model or decoding the data: the rows
    from the ``.npy`` header, the Parquet footer or the image files listed; the classes
    from the model graph's score outputs (at least 2). ``None`` when either cannot be
    told (a CSV table, a damaged file: the in-memory run reports the problem itself)."""
    rows = _data_rows(Path(data_path), data_format)
    if rows is None:
        return None
    classes = _model_classes(Path(model_path))
    return rows * max(2, classes or 2) * 8 * PEAK_FACTOR


def model_stream_reason(
    model_path: str | Path, data_path: str | Path, *, engine: str, memory_limit: int | None = None,
    data_format: str = "auto",
) -> str | None:
    """Why a model run is scored batch by batch (for ``execution.reason``), or ``None``
    for the in-memory run: ``--engine stream``, or (``auto``) an in-memory audit whose
    estimate (:func:`estimated_model_audit_bytes`) is over ``memory_limit`` bytes
    (default: :func:`calaudit.engine.budget.default_memory_limit`)."""
    if engine == "stream":
        return "--engine stream"
    if engine != "auto":
        return None
    limit = memory_limit if memory_limit is not None else default_memory_limit()
    needed = estimated_model_audit_bytes(model_path, data_path, data_format=data_format)
    if needed is None or needed <= limit:
        return None
    return (f"an in-memory run would need about {format_size(needed)} for the model's scores, over the memory limit of "
            f"{format_size(limit)} (--memory-limit)")


def _data_rows(path: Path, data_format: str) -> int | None:
    """Rows of a data directory (or table file) from headers and footers, or ``None``.
    Only regular files are opened (a FIFO would block); quietly: a header numpy warns
    about (a Python 2 file) is the loader's to judge."""
    import warnings

    from ..loaders.datadir import detect_layout, single_table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if path.is_file():
                return _table_rows(path)
            kind = data_format if data_format != "auto" else detect_layout(path)
            if kind == "arrays":
                return _array_rows(path)
            if kind == "table":
                return _table_rows(single_table(path))
            if kind == "images":
                folders = [child for child in path.iterdir() if child.is_dir() and not child.name.startswith(".")]
                return sum(sum(1 for entry in folder.iterdir() if entry.suffix.lower() in IMAGE_SUFFIXES)
                           for folder in folders)
        except Exception:  # noqa: BLE001 - the run that follows names the problem in one line
            return None
    return None


def _array_rows(path: Path) -> int | None:
    import zipfile

    npy, npz = path / "features.npy", path / "features.npz"
    if npy.is_file():
        with open(npy, "rb") as handle:
            return _npy_rows(handle)
    if not npz.is_file():
        return None
    with zipfile.ZipFile(npz) as archive:
        members = [name for name in archive.namelist() if name != "labels.npy"]
        if not members:
            return None
        with archive.open(members[0]) as handle:
            return _npy_rows(handle)


def _npy_rows(handle: Any) -> int | None:
    """The first dimension in a ``.npy`` header (nothing else is read)."""
    from numpy.lib import format as npy_format

    version = npy_format.read_magic(handle)
    readers = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
    if version not in readers:
        return None
    shape = readers[version](handle)[0]
    return int(shape[0]) if shape else None


def _table_rows(path: Path) -> int | None:
    if path.name.lower().endswith(".parquet") and path.is_file():
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None  # a CSV's rows are unknown until it is read; it is read whole either way


def _model_classes(path: Path) -> int | None:
    """The widest score output the graph declares (float tensors' last dimension, a
    ZipMap's class labels), without creating a session; ``None`` when none says."""
    import warnings

    if not path.is_file():
        return None
    try:
        import onnx

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - the run that follows names the problem
        return None
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    zipmaps = {node.output[0]: node for node in proto.graph.node if node.op_type == "ZipMap" and node.output}
    widths = []
    for output in proto.graph.output:
        kind = output.type
        if kind.HasField("tensor_type") and kind.tensor_type.elem_type in floats:
            dims = kind.tensor_type.shape.dim
            if len(dims) == 1:
                widths.append(2)
            elif dims and dims[-1].HasField("dim_value") and dims[-1].dim_value > 0:
                widths.append(int(dims[-1].dim_value))
        elif output.name in zipmaps:
            for attribute in zipmaps[output.name].attribute:
                if attribute.name in ("classlabels_strings", "classlabels_int64s"):
                    widths.append(len(attribute.strings) or len(attribute.ints))
    return max(widths) if widths else None

