"""The Dask engine: a prediction dataset's partitions accumulated on a cluster.

:func:`dask_statistics` has the contract of :func:`calaudit.engine.stream.stream_statistics`
(merged :class:`StreamStatistics` and what the reading did), with the reading spread
over the workers of a Dask cluster (``--engine dask``):

* **Partitions.** One task per file; a file of more than ``partition_rows`` rows is
  split into tasks of consecutive row groups of at most that many rows (a row group
  larger than that is a task of its own). Each task reads only its row groups, by
  path, on the worker, and runs the stream engine's accumulator over them
  (:func:`calaudit.engine.stream.stream_statistics`), so every batch is validated
  and summed exactly as in one process.
* **What travels.** To a worker: a one-file :class:`PredictionDataset` (the file's
  path, row-group sizes, schema and the reading options, a few KB). Back: only the
  statistics, about 1 MB per partition with the default fine histogram.
* **Reduction.** Partials are merged on the workers in a fixed tree, by a task of
  higher priority than reading (so partials do not pile up): partitions 0-7 into one
  merge, 8-15 into the next, ..., then those merges :data:`MERGE_FAN_IN` at a time,
  until one remains; the client gathers only that one. Each merge starts as soon as
  its members are done, but always sums the same members in the same order, so a run
  gives the same bytes as the last, whatever order the tasks finished in. A partial
  waits only for the rest of its group, and tasks start in the order submitted, so
  about ``MERGE_FAN_IN - 1`` partials per running task and level wait: the memory is
  the same for 10 or 10,000 partitions. Float sums add in a different order than in
  one process: the figures agree with it to about 1e-12.
* **Errors.** A partition that fails (an invalid value, a corrupt row group) stops the
  audit: the other tasks are cancelled, nothing partial is returned, and the worker's
  :class:`calaudit.errors.InvalidInputError` reaches the caller as the same one line
  naming the file, row group and row. distributed's own log lines (a failed task's
  "Compute Failed ... Traceback" block, warnings) are kept off stderr during the audit
  (:func:`quiet_logs`, and ``silence_logs`` for the LocalCluster's worker processes).

Scheduler: the ``scheduler`` argument (``--scheduler``), else the environment variable
:data:`SCHEDULER_ENV`, else a ``distributed.LocalCluster`` on this machine, closed
afterwards. A named scheduler is asked who it is first: an address nothing listens on
is "cannot reach", an endpoint that answers in another protocol (or a Dask worker) is
"not a Dask scheduler", both a :class:`calaudit.errors.UsageError` naming the address
and the setting it came from. The client is always closed. Dask is an optional
dependency (``pip install "calaudit[dask]"``), imported only here, inside the functions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import Any

from .._version import __version__
from ..errors import CalauditError, UsageError, first_line
from ..predictions.labels import LabelReadings
from .scan import PredictionDataset
from .statistics import FINE_BINS, StreamStatistics
from .stream import stream_statistics

__all__ = ["CONNECT_TIMEOUT", "DEFAULT_PARTITION_ROWS", "MERGE_FAN_IN", "SCHEDULER_ENV", "Partition",
           "dask_statistics", "plan_partitions", "require_dask", "scheduler_setting"]

#: The environment variable naming a scheduler when ``--scheduler`` is not given.
SCHEDULER_ENV = "CALAUDIT_DASK_SCHEDULER"
#: Seconds to wait for a scheduler to answer before giving up.
CONNECT_TIMEOUT = 10.0
#: Rows above which a file is split (by row groups) into several tasks: 2**20 rows of
#: 10 classes are 16 default batches, and their statistics (about 1 MB) are small next
#: to the 80 MB of probabilities they summarise.
DEFAULT_PARTITION_ROWS = 2**20
#: Rows per task of a model scored on Dask (inference costs far more per row than reading).
DEFAULT_MODEL_PARTITION_ROWS = 2**16
#: Partials merged by one task.
MERGE_FAN_IN = 8
#: Most worker processes of the LocalCluster started when no scheduler is named.
LOCAL_MAX_WORKERS = 8
#: The level distributed's loggers are raised to during an audit (its own ERROR lines,
#: such as a failed task's "Compute Failed" block with a traceback, are not shown: the
#: failure reaches the user as calaudit's one line).
QUIET_LEVEL = logging.CRITICAL
#: The message when dask or distributed cannot be imported.
NO_DASK = 'the dask engine needs the dask extra: pip install "calaudit[dask]"'
#: Where the scheduler address came from, for the messages.
FROM_OPTION = "--scheduler"
#: What a task returns: merged statistics and the reading facts, or ``None`` for no rows.
Partial = tuple[StreamStatistics, dict[str, Any]] | None


@dataclass(frozen=True)
class Partition:
    """One task's share of a dataset: ``row_groups`` (counted from 0) of the only file of
    ``dataset``, or the whole file when ``row_groups`` is ``None``; ``rows`` from the
    footer (for the progress bar)."""

    dataset: PredictionDataset
    row_groups: tuple[int, ...] | None
    rows: int

    @property
    def file(self) -> str:
        return self.dataset.files[0]

    def batches(self) -> Iterator[Any]:
        if self.row_groups is None:
            return self.dataset.file_batches(self.file)
        return self.dataset.fragment_batches(self.file, self.row_groups)


@dataclass(frozen=True)
class ModelPartition:
    """One task's share of an ONNX model run: data rows ``start`` to ``stop`` (``None``:
    every row, for a table, which is read whole), scored with ``options``
    (:func:`calaudit.engine.scoring.open_model_scoring`'s); ``rows`` for the progress bar."""

    model_path: str
    data_path: str
    start: int
    stop: int | None
    rows: int
    options: dict[str, Any]


def plan_model_partitions(model_path: str, data_path: str, n_rows: int, *, splittable: bool,
                          options: dict[str, Any], partition_rows: int | None = None,
                          ) -> list[ModelPartition]:
    """Row ranges of at most ``partition_rows`` rows (default
    :data:`DEFAULT_MODEL_PARTITION_ROWS`; one range for data read whole)."""
    partition_rows = partition_rows or DEFAULT_MODEL_PARTITION_ROWS
    if not splittable or n_rows <= partition_rows:
        return [ModelPartition(str(model_path), str(data_path), 0, None, n_rows, dict(options))]
    return [ModelPartition(str(model_path), str(data_path), start, min(start + partition_rows, n_rows),
                           min(start + partition_rows, n_rows) - start, dict(options))
            for start in range(0, n_rows, partition_rows)]


def dask_model_statistics(
    partitions: list[ModelPartition], *, n_bins: int, fine_bins: int = FINE_BINS, scheduler: str | None = None,
    progress: Callable[[int], None] | None = None, connect_timeout: float = CONNECT_TIMEOUT, routing: bool = False,
) -> tuple[StreamStatistics, dict[str, Any]]:
    """Merged statistics of an ONNX model scored on a Dask cluster: each partition is a
    task that loads the model once and scores its rows into the stream engine's
    accumulators (:func:`calaudit.engine.scoring.score_statistics`); partials are
    merged on the workers as for :func:`dask_statistics`, whose ``info`` keys this
    returns, plus ``transforms`` and ``class_names`` as the partitions found them
    (the caller checks that they agree). The workers read the model and the data
    directory by path. ``routing`` as for :func:`dask_statistics`."""
    require_dask()
    address, setting = scheduler_setting(scheduler)
    with quiet_logs(), _client(address, setting, connect_timeout) as client:
        workers = len(client.nthreads())
        statistics, info = _reduce(client, partitions, n_bins, fine_bins, progress, address, setting,
                                   task=partial(_model_partition_statistics, routing=routing))
    info.update(workers=workers, partitions=len(partitions), scheduler=address or "local",
                partition_rows=max(partition.rows for partition in partitions))
    return statistics, info


def require_dask() -> Any:
    """The ``distributed`` module, or :class:`UsageError` when the extra is missing."""
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError:
        raise UsageError(NO_DASK) from None
    return distributed


def scheduler_setting(scheduler: str | None = None) -> tuple[str | None, str | None]:
    """The scheduler address and the setting it came from (``--scheduler`` or
    :data:`SCHEDULER_ENV`); ``(None, None)`` for a LocalCluster on this machine."""
    if scheduler is not None and str(scheduler).strip():
        return str(scheduler).strip(), FROM_OPTION
    from_env = os.environ.get(SCHEDULER_ENV, "").strip()
    if from_env:
        return from_env, SCHEDULER_ENV
    return None, None


def plan_partitions(dataset: PredictionDataset, partition_rows: int = DEFAULT_PARTITION_ROWS) -> list[Partition]:
    """The tasks of a dataset: one per file, a file over ``partition_rows`` rows split
    into runs of consecutive row groups of at most that many rows (a larger row group
    alone). Files and row groups without rows are left out (there is nothing to read)."""
    if isinstance(partition_rows, bool) or not isinstance(partition_rows, int) or partition_rows < 1:
        raise UsageError(f"partition_rows is {partition_rows!r}; expected a whole number of rows, at least 1")
    partitions: list[Partition] = []
    for single, group_rows in zip(dataset.per_file(), dataset.row_group_rows):
        total = sum(group_rows)
        if total == 0:
            continue
        if total <= partition_rows:
            partitions.append(Partition(single, None, total))
            continue
        run: list[int] = []
        run_rows = 0
        for group, rows in enumerate(group_rows):
            if rows == 0:
                continue
            if run and run_rows + rows > partition_rows:
                partitions.append(Partition(single, tuple(run), run_rows))
                run, run_rows = [], 0
            run.append(group)
            run_rows += rows
        partitions.append(Partition(single, tuple(run), run_rows))
    return partitions


def dask_statistics(
    dataset: PredictionDataset, *, n_bins: int, fine_bins: int = FINE_BINS, scheduler: str | None = None,
    progress: Callable[[int], None] | None = None, partition_rows: int = DEFAULT_PARTITION_ROWS,
    connect_timeout: float = CONNECT_TIMEOUT, window: Any = None, routing: bool = False,
    observers: Mapping[str, Callable[[], Any]] | None = None,
) -> tuple[StreamStatistics, dict[str, Any]]:
    """Merged statistics of every row of ``dataset``, read and reduced on a Dask cluster.

    With ``window`` (a :func:`calaudit.engine.times.parse_window` size), every task
    also accumulates its rows' :class:`~calaudit.engine.windows.WindowStatistics`,
    merged like the statistics and returned as ``info["windows"]``. With ``routing``,
    every task also counts its rows per fine confidence bin
    (:class:`~calaudit.engine.routing_bins.RoutingHistogram`), returned merged as
    ``info["routing_bins"]``.

    ``observers`` maps names to factories (picklable: a class or a
    :func:`functools.partial` of one) of whatever else a capability keeps per row
    (segments by group value, human votes, a sample for the baselines): each task
    calls every factory once and passes its batches through the object's
    ``observe(batches)`` (a generator that yields them on); the objects are merged
    with ``merge(other)`` (which returns the merged object) in the same fixed tree as the statistics and returned as
    ``info["observed"][name]``.

    Returns what :func:`calaudit.engine.stream.stream_statistics` returns (the same
    ``info`` keys), plus ``workers`` (when the reduction started), ``partitions``,
    ``partition_rows`` and ``scheduler`` (the address, or ``"local"``). ``progress``
    is called with each partition's rows as it completes. Raises the first failing
    partition's :class:`calaudit.errors.InvalidInputError`, and
    :class:`calaudit.errors.UsageError` when dask is not installed or the scheduler
    cannot be reached within ``connect_timeout`` seconds (naming the address and the
    setting it came from).
    """
    require_dask()
    address, setting = scheduler_setting(scheduler)
    partitions = plan_partitions(dataset, partition_rows)
    if not partitions:
        raise ValueError("no rows were read: there is nothing to audit")
    with quiet_logs(), _client(address, setting, connect_timeout) as client:
        workers = len(client.nthreads())
        statistics, info = _reduce(client, partitions, n_bins, fine_bins, progress, address, setting,
                                   task=partial(_partition_statistics, window=window, routing=routing,
                                                observers=dict(observers or {})))
    info.update(workers=workers, partitions=len(partitions), partition_rows=partition_rows,
                scheduler=address or "local")
    return statistics, info


# ------------------------------------------------------------------------ the client


@contextmanager
def _client(address: str | None, setting: str | None, connect_timeout: float) -> Iterator[Any]:
    """A client of the named scheduler, or of a new LocalCluster; both closed on exit."""
    import distributed

    cluster = None
    if address is None:
        cluster = distributed.LocalCluster(
            n_workers=_local_workers(), threads_per_worker=1, processes=True, dashboard_address=":0",
            silence_logs=QUIET_LEVEL,  # the worker processes' log handlers: no "Compute Failed" block
        )
        try:
            client = distributed.Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
    else:
        expected = "expected the address of a running scheduler, such as tcp://host:8786"
        try:
            _ask_scheduler(address, connect_timeout)
            client = distributed.Client(address, timeout=connect_timeout, set_as_default=False)
        except NotAScheduler as exc:
            raise UsageError(f"{setting} {address} is not a Dask scheduler ({exc}); {expected}") from None
        except Exception as exc:  # OSError, TimeoutError, ValueError for a malformed address, ...
            reason = first_line(exc) if str(exc).strip() else f"no answer ({type(exc).__name__})"
            raise UsageError(f"{setting} {address}: cannot reach a Dask scheduler within {connect_timeout:g} s "
                             f"({reason}); {expected}") from None
    try:
        yield client
    finally:
        try:
            client.close()
        finally:
            if cluster is not None:
                cluster.close()


class NotAScheduler(Exception):
    """An endpoint that answered, but not as a Dask scheduler does (the message says how)."""


#: What an endpoint that accepts a connection and closes it is told (whether it closes
#: during the transport's handshake or after it: the timing is the machine's).
CLOSED = ("it closed the connection without answering in Dask's protocol; a scheduler that uses TLS is addressed "
          "tls://host:port")


def _ask_scheduler(address: str, timeout: float) -> None:
    """Ask the scheduler at ``address`` who it is, all within ``timeout`` seconds.

    First a bare connection (refused, unknown host: the transport's error at once, no
    retries), then Dask's handshake and the ``identity`` question on a second one. An
    endpoint that accepts and then answers in another protocol (a web server, a
    database: distributed would read its first bytes as a frame length, "Unable to
    allocate 3 EiB") or closes the connection raises :class:`NotAScheduler`; so does
    a Dask worker or nanny. One that accepts and never answers runs into ``timeout``.

    A Client's own timeout covers the connection, not an endpoint that accepts it and
    never answers (it would wait for ever), and a Client that failed to start leaves
    a traceback on stderr when it is collected; this question, asked on a loop of its
    own in a thread of its own (the caller may run an event loop: a notebook), has
    neither problem."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import CommClosedError, parse_address
    from distributed.comm.registry import get_backend
    from distributed.core import rpc
    from distributed.security import Security

    connection_args = Security().get_connection_args("client")

    async def identity() -> Any:
        scheme, location = parse_address(address)
        try:
            comm = await get_backend(scheme).get_connector().connect(location, deserialize=False,
                                                                    **connection_args)
        except OSError as exc:  # distributed wraps the socket's error: show the socket's
            root = exc
            while isinstance(root.__cause__, OSError):
                root = root.__cause__
            if isinstance(root, CommClosedError):  # no socket error under it: accepted, then closed
                raise NotAScheduler(CLOSED) from None
            raise OSError(root.strerror or str(root) or type(root).__name__) from None
        comm.abort()
        try:
            async with rpc(address, timeout=timeout, connection_args=connection_args) as remote:
                return await remote.identity()
        except CommClosedError:
            raise NotAScheduler(CLOSED) from None
        except (OSError, asyncio.TimeoutError):  # no answer in time, or gone since the first connection
            raise
        except Exception:  # MemoryError, ValueError, a decoding error: bytes of another protocol
            raise NotAScheduler("it answered in another protocol") from None

    def ask() -> Any:
        return asyncio.run(asyncio.wait_for(identity(), timeout))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="calaudit-dask-connect") as pool:
        who = pool.submit(ask).result()
    if isinstance(who, dict) and "workers" in who:  # a scheduler lists its workers
        return
    kind = who.get("type") if isinstance(who, dict) else None
    if isinstance(kind, str) and kind:
        scheduler = who.get("scheduler")
        of = f" of the scheduler {scheduler}" if isinstance(scheduler, str) and scheduler else ""
        raise NotAScheduler(f"it is a Dask {kind.lower()}{of}")
    raise NotAScheduler("its identity is not a scheduler's")


@contextmanager
def quiet_logs(level: int | None = None) -> Iterator[None]:
    """distributed's loggers in this process raised to ``level`` (default
    :data:`QUIET_LEVEL`) for the duration, then restored: a failed task's "Compute
    Failed ... Traceback" block and the scheduler's and nanny's warnings stay off the
    user's stderr; the failure itself reaches the caller as one exception. (The worker
    processes of the LocalCluster started here are silenced by ``silence_logs``.)"""
    level = QUIET_LEVEL if level is None else level
    names = ["distributed"] + [name for name, item in list(logging.Logger.manager.loggerDict.items())
                               if name.startswith("distributed.") and isinstance(item, logging.Logger)
                               and item.level != logging.NOTSET]
    saved = {name: logging.getLogger(name).level for name in names}
    for name in saved:
        logging.getLogger(name).setLevel(max(level, saved[name]))
    try:
        yield
    finally:
        for name, previous in saved.items():
            logging.getLogger(name).setLevel(previous)


def _local_workers() -> int:
    """One single-threaded worker process per CPU this process may use, at most
    :data:`LOCAL_MAX_WORKERS` (the accumulator holds the GIL for part of each batch)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, LOCAL_MAX_WORKERS))


# ------------------------------------------------------------------------ the reduction


def _reduce(client: Any, partitions: list[Any], n_bins: int, fine_bins: int,
            progress: Callable[[int], None] | None, address: str | None,
            setting: str | None, task: Callable[..., Partial] | None = None) -> tuple[StreamStatistics, dict[str, Any]]:
    """Submit every partition and merge the partials on the workers in a fixed tree
    (:func:`merge_levels`): partitions 0-7 into one merge, 8-15 into the next, and so on,
    then those merges eight at a time, until one remains, which is gathered. A merge is
    submitted as soon as its members are done, whatever order the tasks finish in, so
    the float sums, and the result, are the same bytes from run to run. On any failure
    every task still wanted is cancelled."""
    from distributed import as_completed

    levels = merge_levels(len(partitions))
    top = len(levels) - 1
    rows_of: dict[str, int] = {}
    place: dict[str, tuple[int, int]] = {}  # a future's (level, index) in the tree
    done: list[dict[int, Any]] = [{} for _ in levels]  # finished, waiting for the rest of their group
    live: dict[str, Any] = {}  # futures submitted and not yet merged: cancelled on failure
    # One message for every task (submitting 10,000 one by one takes seconds).
    futures = client.map(task or _partition_statistics, partitions, n_bins=n_bins, fine_bins=fine_bins,
                         version=__version__, pure=False)
    for index, (partition, future) in enumerate(zip(partitions, futures)):
        rows_of[future.key] = partition.rows
        place[future.key] = (0, index)
        live[future.key] = future
    del futures
    waiting = as_completed(list(live.values()), loop=client.loop)
    last = None
    try:
        for future in waiting:
            if future.status != "finished":
                _raise_task_failure(future, address, setting)
            rows = rows_of.pop(future.key, None)
            if rows is not None and progress is not None:
                progress(rows)
            level, index = place.pop(future.key)
            while level < top:  # climb while the group is a lone member (nothing to merge)
                group = index // MERGE_FAN_IN
                members = range(group * MERGE_FAN_IN, min((group + 1) * MERGE_FAN_IN, levels[level]))
                done[level][index] = future
                if any(member not in done[level] for member in members):
                    break
                ready = [done[level].pop(member) for member in members]
                level, index = level + 1, group
                if len(ready) == 1:
                    continue
                future = client.submit(_merge_partials, *ready, pure=False, priority=1)
                place[future.key] = (level, index)
                live[future.key] = future
                for member in ready:
                    live.pop(member.key, None)
                waiting.add(future)
                break
            else:
                last = future
                break
        partial = last.result()
    except BaseException:
        with suppress(Exception):  # a client that lost its scheduler cannot cancel: the error matters
            client.cancel(list(live.values()))  # the waiting ones are among them
        raise
    if partial is None:
        raise ValueError("no rows were read: there is nothing to audit")
    statistics, info = partial
    info = dict(info)
    if "label_readings" in info:  # class names in one partition, indices in another: the first index in file order
        info.pop("label_readings").check()
    return statistics, info


def merge_levels(partitions: int) -> list[int]:
    """The size of each level of the merge tree: ``partitions`` partials, then one merge
    per :data:`MERGE_FAN_IN` of them, and so on up to the one result (``[20, 3, 1]``)."""
    levels = [partitions]
    while levels[-1] > 1:
        levels.append(-(-levels[-1] // MERGE_FAN_IN))
    return levels


def _raise_task_failure(future: Any, address: str | None, setting: str | None) -> None:
    """The one-line error of a task that did not finish."""
    where = f"{setting} {address}" if address else "the local Dask cluster"
    if future.status == "error":
        error = future.exception()
        if isinstance(error, CalauditError):
            raise error.with_traceback(None) from None
        if isinstance(error, ImportError) and "calaudit" in str(error):
            raise UsageError(f"{where}: a worker cannot import calaudit ({first_line(error)}); "
                             f"install calaudit {__version__} on every worker") from None
        if type(error).__name__ == "KilledWorker":
            raise UsageError(f"{where}: Dask workers died running a partition ({first_line(error)}); "
                             "give the workers more memory, or check their logs") from None
        raise error
    raise UsageError(f"{where}: the Dask task {future.key} was {future.status} (the scheduler or its workers "
                     "went away during the audit); expected a running cluster")


def _partition_statistics(partition: Partition, n_bins: int, fine_bins: int, version: str,
                          window: Any = None, routing: bool = False,
                          observers: Mapping[str, Callable[[], Any]] | None = None) -> Partial:
    """A worker's task: the statistics of one partition, by the stream engine (and its
    windows' with ``window``); ``None`` when it yields no row (a time filter kept none
    of its rows)."""
    if version != __version__:
        raise UsageError(f"a Dask worker runs calaudit {__version__}, this client {version}; "
                         f"install calaudit {version} on every worker")
    batches = partition.batches()
    first = next(batches, None)
    if first is None:
        return None
    batches = chain([first], batches)
    windows = None
    if window is not None:
        from .windows import WindowStatistics

        windows = WindowStatistics(window, n_bins=n_bins)
        batches = windows.observe(batches)
    histogram = None
    if routing:
        from .routing_bins import RoutingHistogram

        histogram = RoutingHistogram()
    observed = {name: factory() for name, factory in (observers or {}).items()}
    for observer in observed.values():
        batches = observer.observe(batches)
    statistics, info = stream_statistics(batches, n_bins=n_bins, fine_bins=fine_bins, check_labels=False,
                                         routing=histogram)
    if observed:
        info["observed"] = observed
    if windows is not None:
        info["windows"] = windows
    if histogram is not None:
        info["routing_bins"] = histogram
    return statistics, info


def _model_partition_statistics(partition: ModelPartition, n_bins: int, fine_bins: int, version: str,
                                routing: bool = False) -> Partial:
    """A worker's task: one row range of a model run, scored and accumulated."""
    from .scoring import score_statistics

    if version != __version__:
        raise UsageError(f"a Dask worker runs calaudit {__version__}, this client {version}; "
                         f"install calaudit {version} on every worker")
    statistics, found = score_statistics(partition.model_path, partition.data_path, partition.start,
                                         partition.stop, n_bins=n_bins, fine_bins=fine_bins, check_labels=False,
                                         routing=routing, **partition.options)
    info = {key: found[key] for key in ("batches", "largest_batch_rows", "max_row_sum_deviation", "clipped_values",
                                        "kernel", "label_readings", "routing_bins") if key in found}
    info.update(transforms=[found["transform"]], class_names=[list(found["class_names"])])
    if partition.start == 0:
        info["facts"] = found["facts"]  # how the first rows were read, for the client's source
    return statistics, info


def _merge_partials(*partials: Partial) -> Partial:
    """A worker's task: partials merged into one (statistics summed, reading facts as
    :func:`calaudit.engine.stream.stream_statistics` combines them)."""
    found = [partial for partial in partials if partial is not None]
    if not found:
        return None
    return StreamStatistics.merge_all(statistics for statistics, _ in found), _merge_info(info for _, info in found)


def _merge_info(infos: Iterable[dict[str, Any]]) -> dict[str, Any]:
    merged = {"batches": 0, "largest_batch_rows": 0, "max_row_sum_deviation": 0.0, "clipped_values": 0}
    for info in infos:
        merged["batches"] += info["batches"]
        merged["largest_batch_rows"] = max(merged["largest_batch_rows"], info["largest_batch_rows"])
        merged["max_row_sum_deviation"] = max(merged["max_row_sum_deviation"], info["max_row_sum_deviation"])
        merged["clipped_values"] += info["clipped_values"]
        for key in ("transforms", "class_names"):  # model partitions: each says what it found
            if key in info:
                merged.setdefault(key, [])
                for value in info[key]:
                    if value not in merged[key]:
                        merged[key].append(value)
        if "facts" in info:
            merged["facts"] = info["facts"]
        if "routing_bins" in info:  # counts per fine confidence bin, for review routing
            merged["routing_bins"] = (info["routing_bins"] if "routing_bins" not in merged
                                      else merged["routing_bins"].merge(info["routing_bins"]))
        if "windows" in info:  # per-window statistics of --window
            merged["windows"] = info["windows"] if "windows" not in merged else merged["windows"].merge(info["windows"])
        for name, observer in info.get("observed", {}).items():  # the capabilities' own per-row state
            observed = merged.setdefault("observed", {})
            observed[name] = observer if name not in observed else observed[name].merge(observer)
        if "label_readings" in info:  # checked by the client once every partition is in
            merged["label_readings"] = info["label_readings"].merge(merged.get("label_readings", LabelReadings()))
        kernel = info.get("kernel")
        if kernel is not None:  # the workers' kernels (numba where installed there)
            merged["kernel"] = kernel if merged.get("kernel") in (None, kernel) else "mixed"
    return merged


#: For a capability that runs several reductions on one cluster (:mod:`calaudit.engine.dask_session`).
open_client, reduce_partitions, partition_task, raise_task_failure = (_client, _reduce, _partition_statistics,
                                                                      _raise_task_failure)
#: Partials merged on a worker, for a capability's own reductions (:mod:`calaudit.engine.compare_join_dask`).
merge_partials = _merge_partials
