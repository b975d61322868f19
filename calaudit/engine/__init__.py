"""The statistics engine: predictions read into mergeable statistics, batch by batch
(streamed audits) or as one batch (the in-memory audit, ``memory``: the statistics plus
the exact figures only rows give, with compiled row passes in ``row_kernels``); both
audits end in ``audit_result``.

Readers yield validated :class:`~calaudit.engine.batch.Batch` es: ``scan`` (Parquet
datasets, hive partitions, time filters read by ``times``), ``csv_scan`` (one CSV
file) and ``scoring`` (an ONNX model over a data directory; ``writer`` saves its
predictions in chunks). ``statistics`` holds the mergeable sufficient statistics,
filled by ``kernel`` (compiled with numba when installed, numpy otherwise) and reduced
by ``stream`` in one process or by ``distributed`` on a Dask cluster.
``stream.audit_statistics`` turns them into an :class:`~calaudit.result.AuditResult`,
with ``sketch`` and ``sketch_smooth`` (figures from the fine histogram, with bounds),
``resample`` (grouped bootstrap intervals), ``windows`` (figures per window of time),
``drift`` (whether the latest window changed) and ``routing_bins`` (review routing
from exact counts per fine confidence bin). ``budget`` decides when a file is
too large for memory.
"""
