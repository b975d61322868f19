"""Writing a prediction file chunk by chunk: ``--save-predictions`` of a streamed run.

The file is the one :func:`calaudit.files.prediction_file.save_prediction_file` writes for the same
rows (the row id column, ``label`` with class names, ``prob_<class>`` with full
round-trip precision; read back, the frames are equal), but it is written as the
batches come, so the whole probability matrix is never held:

* Parquet through :class:`pyarrow.parquet.ParquetWriter`, a row group per batch;
* CSV (and gzip-compressed CSV) through pandas, one block of lines per batch (the
  header once), byte for byte the text of the in-memory save.

Atomically, as :mod:`calaudit.files.atomic` writes every output: a temporary file in the
destination's directory, renamed over it when the run succeeded and removed on any
error (``KeyboardInterrupt`` too), so a failed run leaves no partial file and an
existing file untouched. A symbolic link is followed; a character device or a FIFO is
written through.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from ..errors import UsageError
from ..files.atomic import output_destination, output_error
from ..files.formats import table_format

#: What ``--save-predictions`` writes, by file name.
SUPPORTED_FORMATS = ".parquet, .csv or .csv.gz"


class PredictionFileWriter:
    """A context manager that writes a prediction file batch by batch.

    The columns are fixed by the first :meth:`write`: ``class_names`` name the
    ``prob_<class>`` columns (a model's classes are known once it has scored a batch),
    ``row_id_name`` is the column of row ids written first (``row``: the data row counted
    from 1, or ``path`` of an image), left out when it is ``label`` or starts with
    ``prob_``, as the in-memory save leaves it out. A file name of another format is a
    :class:`calaudit.errors.UsageError` at construction, before any work; a failing
    write (a full disk) is :class:`calaudit.errors.OutputWriteError`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.format = table_format(self.path)
        if self.format is None:
            raise UsageError(f"{self.path}: --save-predictions needs a {SUPPORTED_FORMATS} file name")
        self.class_names: tuple[str, ...] | None = None
        self.row_id_name = "row"
        self.rows_written = 0
        self._destination: Path | None = None
        self._temporary: Path | None = None
        self._handle: Any = None
        self._sink: Any = None  # the ParquetWriter, or the (gzip) binary stream of the CSV text

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Self:
        destination, how = output_destination(self.path)
        try:
            if how == "stream":  # a device or a FIFO: written through, never replaced
                self._handle = open(destination, "wb")  # closed in __exit__
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                descriptor, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp",
                                                         dir=destination.parent)
                self._temporary = Path(temporary)
                self._handle = os.fdopen(descriptor, "wb")
        except OSError as exc:
            raise output_error(self.path, exc, writing=False) from None
        self._destination = destination
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: object) -> None:
        if exc_type is None:
            self._commit()
        else:
            self._discard()

    def write(self, row_ids: np.ndarray, labels: np.ndarray, proba: np.ndarray, *, class_names: Sequence[str],
              row_id_name: str = "row") -> None:
        """Append rows: their ids, their labels as class names and their ``(n, K)``
        probabilities (before row renormalisation, as the in-memory save writes them)."""
        if self._handle is None:
            raise RuntimeError("PredictionFileWriter.write outside its with block")
        if self.class_names is None:
            self.class_names, self.row_id_name = tuple(str(name) for name in class_names), row_id_name
        frame = self._frame(row_ids, labels, proba)
        try:
            if self.format == "parquet":
                self._write_parquet(frame)
            else:
                self._write_csv(frame)
        except OSError as exc:
            raise output_error(self.path, exc, writing=True) from None
        self.rows_written += len(frame)

    # ------------------------------------------------------------------ formats
    def _frame(self, row_ids: np.ndarray, labels: np.ndarray, proba: np.ndarray) -> Any:
        """The batch as the in-memory save's DataFrame (:func:`calaudit.files.prediction_file.save_prediction_file`)."""
        import pandas as pd

        columns: dict[str, Any] = {}
        if self.row_id_name != "label" and not self.row_id_name.startswith("prob_"):
            columns[self.row_id_name] = row_ids
        columns["label"] = np.asarray(labels, dtype=object)
        for k, name in enumerate(self.class_names):
            columns[f"prob_{name}"] = proba[:, k]
        return pd.DataFrame(columns)

    def _write_parquet(self, frame: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._sink is None:
            self._sink = pq.ParquetWriter(_Positioned(self._handle), table.schema)
        self._sink.write_table(table)

    def _write_csv(self, frame: Any) -> None:
        if self._sink is None:
            if self.format == "csv.gz":
                import gzip

                # No name and no time in the header: the same bytes for the same rows.
                self._sink = gzip.GzipFile(filename="", mode="wb", fileobj=self._handle, mtime=0)
            else:
                self._sink = self._handle
        text = frame.to_csv(index=False, header=self.rows_written == 0, lineterminator="\n")
        self._sink.write(text.encode("utf-8"))

    # ------------------------------------------------------------------ ending
    def _finish_sink(self) -> None:
        if self._sink is None:  # a streamed run stops with an error before, when no row is read
            raise RuntimeError(f"{self.path}: no rows were written")
        if self._sink is not self._handle:
            self._sink.close()

    def _commit(self) -> None:
        try:
            try:
                self._finish_sink()
                self._handle.flush()
                if self._temporary is not None:
                    os.fsync(self._handle.fileno())
                self._handle.close()
            except OSError as exc:
                raise output_error(self.path, exc, writing=True) from None
            if self._temporary is None:
                return
            try:
                mode = stat.S_IMODE(os.stat(self._destination).st_mode)  # an existing file keeps its mode
            except OSError:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            try:
                os.chmod(self._temporary, mode)
                os.replace(self._temporary, self._destination)
            except OSError as exc:
                raise output_error(self.path, exc, writing=False) from None
            self._temporary = None
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        """Close everything quietly and remove the temporary file (an error is on its way)."""
        for closable in (self._sink, self._handle):
            if closable is not None:
                with contextlib.suppress(Exception):  # the error on its way matters, not this one
                    closable.close()
        self._sink = None
        if self._temporary is not None:
            self._temporary.unlink(missing_ok=True)
            self._temporary = None


class _Positioned:
    """A binary stream that counts what was written, so pyarrow can ``tell()`` on a pipe
    (a FIFO or ``/dev/stdout`` cannot seek); everything else is the stream's own."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        written = self._handle.write(data)
        self._position += len(memoryview(data))
        return written if written is not None else len(memoryview(data))

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:  # the writer's handle is closed by its owner
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False
