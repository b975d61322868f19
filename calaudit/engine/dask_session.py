"""One Dask client for several reductions: ``calaudit compare`` reads each model's
dataset on the same cluster (:func:`calaudit.engine.distributed.dask_statistics` opens
a client, and a LocalCluster, per call), then runs its own tasks there."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from .distributed import (
    CONNECT_TIMEOUT,
    DEFAULT_PARTITION_ROWS,
    open_client,
    partition_task,
    plan_partitions,
    quiet_logs,
    raise_task_failure,
    reduce_partitions,
    require_dask,
    scheduler_setting,
)
from .scan import PredictionDataset
from .statistics import FINE_BINS, StreamStatistics

__all__ = ["DaskSession", "dask_session"]


@dataclass(frozen=True)
class DaskSession:
    """An open client (:func:`dask_session`) for a capability that runs several
    reductions on one cluster (``calaudit compare``: one per model, then its own tasks)."""

    client: Any
    address: str | None
    setting: str | None

    def statistics(self, dataset: PredictionDataset, *, n_bins: int, fine_bins: int = FINE_BINS,
                   progress: Callable[[int], None] | None = None,
                   partition_rows: int = DEFAULT_PARTITION_ROWS, routing: bool = False,
                   observers: Mapping[str, Callable[[], Any]] | None = None) -> tuple[StreamStatistics, dict[str, Any]]:
        """What :func:`dask_statistics` returns, on this session's cluster."""
        partitions = plan_partitions(dataset, partition_rows)
        if not partitions:
            raise ValueError("no rows were read: there is nothing to audit")
        workers = len(self.client.nthreads())
        statistics, info = reduce_partitions(self.client, partitions, n_bins, fine_bins, progress, self.address, self.setting,
                                   task=partial(partition_task, routing=routing,
                                                observers=dict(observers or {})))
        info.update(workers=workers, partitions=len(partitions), partition_rows=partition_rows,
                    scheduler=self.address or "local")
        return statistics, info

    def raise_failure(self, future: Any) -> None:
        """The one-line error of a task of this session that did not finish."""
        raise_task_failure(future, self.address, self.setting)


@contextmanager
def dask_session(scheduler: str | None = None, connect_timeout: float = CONNECT_TIMEOUT) -> Iterator[DaskSession]:
    """A client of the scheduler (``scheduler``, else :data:`SCHEDULER_ENV`, else a new
    LocalCluster), with distributed's logs kept quiet; closed on exit."""
    require_dask()
    address, setting = scheduler_setting(scheduler)
    with quiet_logs(), open_client(address, setting, connect_timeout) as client:
        yield DaskSession(client, address, setting)
