"""Streamed accumulation of an audit: mergeable statistics and dataset scans.

``statistics`` holds the mergeable sufficient statistics of the audit; ``scan`` reads
a prediction dataset (Parquet, hive partitions allowed) in validated record batches.
A later step runs them in one process (``--engine stream``) or as a Dask reduction.
"""
