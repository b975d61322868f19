"""Feature matrices a model is fed: cast to the element type each input wants, with
one-line errors naming the value that does not fit, and shaped to the input's rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError


def cast_feature(values: np.ndarray, spec: Any, *, where: str, locate: Any = None) -> np.ndarray:
    """Cast a block of features to the element type the model input wants.

    ``locate(row, column)`` names where a value of the block (its row in the block,
    its flat position in the row) came from, for the messages about one value."""
    from ..onnx.model import INPUT_DTYPES

    dtype = INPUT_DTYPES.get(spec.element_type)
    if dtype is None:
        raise InvalidInputError(f"{where}: the model input {spec.name!r} has type {spec.type}, which calaudit cannot feed")
    if dtype is np.str_:
        if values.dtype.kind == "O":
            import pandas as pd

            if pd.isna(values).any():
                raise InvalidInputError(
                    f"{where}: the model input {spec.name!r} takes text but the data has a missing (null) value"
                )
        nested = (np.frompyfunc(lambda v: isinstance(v, (list, tuple, dict, np.ndarray)), 1, 1)(values).astype(bool)
                  if values.dtype.kind == "O" else np.zeros(values.shape, dtype=bool))
        try:
            if nested.any():  # a list or struct column: its Python repr is no text a model was trained on
                raise TypeError("nested values")
            return values.astype(str).astype(object)
        except (TypeError, ValueError):
            flat = values.reshape(-1)
            first = flat[int(np.argmax(nested.reshape(-1)))] if nested.any() else flat[0]
            raise InvalidInputError(
                f"{where}: the model input {spec.name!r} takes text but the data holds values such as {first!r}"
            ) from None
    if values.dtype.kind in "cV":  # complex numbers, structured records: no number to feed
        raise InvalidInputError(
            f"{where}: the model input {spec.name!r} expects numbers ({spec.element_type}) but the data holds "
            f"{values.dtype} values"
        )
    if values.dtype.kind in "OUSmM":
        try:
            if values.dtype.kind in "mM":
                raise TypeError("dates and times are not numbers")
            # Text as numbers first, then the checks below: "1.5" is not an integer either.
            values = values.astype(np.float64)
        except (TypeError, ValueError):  # text, or objects such as dates (a typed Parquet column)
            raise InvalidInputError(
                f"{where}: the model input {spec.name!r} expects numbers ({spec.element_type}) but the data holds "
                f"{_first_non_number(values)}"
            ) from None
    if np.issubdtype(dtype, np.integer):
        _check_integers(values, dtype, spec, where=where)
    elif np.issubdtype(dtype, np.floating) and values.dtype.kind in "fiu" and values.dtype.itemsize > np.dtype(dtype).itemsize:
        _check_float_range(values, dtype, spec, where=where, locate=locate)
    return values.astype(dtype, copy=False)


def _check_float_range(values: np.ndarray, dtype: Any, spec: Any, *, where: str, locate: Any = None) -> None:
    """Refuse finite features beyond the input's float type (3.5e38 for float32): the cast
    would make them infinite, and the model's output would blame the wrong thing."""
    from ..errors import show

    largest = float(np.finfo(dtype).max)
    with np.errstate(invalid="ignore"):
        outside = np.isfinite(values) & (np.abs(values) > largest)
    if outside.any():
        flat = outside.reshape(outside.shape[0], -1)
        row, column = divmod(int(np.argmax(flat.reshape(-1))), flat.shape[1])
        value = values.reshape(flat.shape)[row, column]
        place = locate(row, column) if locate is not None else where
        raise InvalidInputError(
            f"{place} is {show(value)}; the model input {spec.name!r} takes {spec.element_type} numbers, at most "
            f"{largest:.4g} in size"
        )


def _check_integers(values: np.ndarray, dtype: Any, spec: Any, *, where: str) -> None:
    """Refuse features an integer input cannot take exactly: fractions, missing values,
    and numbers outside the type's range (numpy's cast would wrap them around silently)."""
    from ..errors import show

    if values.dtype.kind == "f" and (not np.all(np.isfinite(values)) or not np.all(values == np.round(values))):
        raise InvalidInputError(
            f"{where}: the model input {spec.name!r} expects integers ({spec.element_type}) but the data "
            "holds fractional or missing values"
        )
    info = np.iinfo(dtype)
    if values.dtype.kind == "f":  # the bounds as float64, exactly: 2**63 itself is out of int64's range
        top = 2.0 ** (info.bits if info.min == 0 else info.bits - 1)
        wide = values.astype(np.float64, copy=False)  # float16 cannot hold the bounds
        outside = (wide < float(info.min)) | (wide >= top)
    else:
        outside = (values < info.min) | (values > info.max)
    if outside.any():
        value = values.reshape(-1)[int(np.argmax(outside.reshape(-1)))]
        raise InvalidInputError(
            f"{where}: the model input {spec.name!r} expects integers ({spec.element_type}, {info.min} to "
            f"{info.max}) but the data holds {show(value)}"
        )


def _first_non_number(values: np.ndarray) -> str:
    """``text such as 'x'`` / ``values such as datetime.date(2024, 1, 5)``: for the error message."""
    import pandas as pd

    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind in "mM":
        return f"dates or times such as {str(flat[0])!r}"
    bad = pd.to_numeric(pd.Series(flat, dtype=object), errors="coerce").isna().to_numpy() & ~pd.isna(flat)
    value = flat[int(np.argmax(bad))] if bad.any() else flat[0]
    return f"text such as {value!r}" if isinstance(value, str) else f"values such as {value!r}"


def fit_row_shape(block: np.ndarray, spec: Any, *, where: str) -> np.ndarray:
    """Reshape ``(n, ...)`` feature rows to the input's fixed row shape when sizes agree."""
    row_shape = spec.row_shape
    if not row_shape or any(not isinstance(d, int) or d < 0 for d in row_shape):
        return block
    wanted = int(np.prod(row_shape))
    have = int(np.prod(block.shape[1:])) if block.ndim > 1 else 1
    if tuple(block.shape[1:]) == tuple(row_shape):
        return block
    if have != wanted:
        raise InvalidInputError(
            f"{where}: the model input {spec.describe()} takes {wanted} values per row, the data has {have}"
            f" (shape {tuple(block.shape[1:])})"
        )
    return block.reshape((block.shape[0], *row_shape))


def numeric_matrix(matrix: np.ndarray) -> np.ndarray | None:
    if matrix.dtype.kind not in "biuf":
        return None
    matrix = matrix.reshape(matrix.shape[0], -1).astype(np.float64)
    return matrix if np.isfinite(matrix).all() else None
