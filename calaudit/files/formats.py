"""Table file formats and the text conventions CSV and Parquet readers share."""

from __future__ import annotations

from pathlib import Path

CSV_SUFFIXES = (".csv", ".csv.gz")
#: Texts read as a missing number in probability columns (pandas' defaults). Label
#: columns keep them as text: a class may be called "NA" or "None".
MISSING_MARKERS = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]
PARQUET_SUFFIXES = (".parquet", ".pq")


def table_format(path: Path) -> str | None:
    """``"csv"``, ``"csv.gz"`` or ``"parquet"`` from the file name, else ``None``."""
    name = path.name.lower()
    if name.endswith(".csv.gz"):
        return "csv.gz"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None
