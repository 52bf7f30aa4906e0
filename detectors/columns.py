"""Turn user data (a DataFrame or a mapping of arrays) into plain numpy columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

Data = pd.DataFrame | Mapping[str, Any]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjectArray = npt.NDArray[np.object_]


def column_names(data: Data) -> list[str]:
    """Column names of a DataFrame or the keys of a mapping, as strings."""
    return [str(c) for c in data.columns] if isinstance(data, pd.DataFrame) else [str(c) for c in data]


def row_count(data: Data) -> int:
    """Number of rows; every column of a mapping must have the same length."""
    if isinstance(data, pd.DataFrame):
        return int(len(data))
    lengths = {name: len(values) for name, values in data.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns have different lengths: {lengths}")
    return next(iter(lengths.values()), 0)


def get_column(data: Data, name: str) -> pd.Series:
    """One column as a pandas Series (no copy where pandas allows it)."""
    if isinstance(data, pd.DataFrame):
        return data[name]
    return pd.Series(np.asarray(data[name]) if not isinstance(data[name], pd.Series) else data[name])


def is_numeric(series: pd.Series) -> bool:
    """True for integer and float columns (booleans count as categorical)."""
    return bool(pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype))


def as_float(series: pd.Series, name: str) -> FloatArray:
    """Float64 values with NaN for missing; a ValueError if the column is not numeric."""
    try:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column {name!r} must be numeric (it is numeric in the reference): {exc}") from exc


def to_python(value: Any) -> Any:
    """A numpy scalar as the equal Python scalar, so it survives JSON and matches dict keys."""
    return value.item() if isinstance(value, np.generic) else value


def value_counts(series: pd.Series) -> dict[Any, int]:
    """Counts of the non-missing values, keys as Python scalars."""
    counts = series.value_counts(dropna=True, sort=False)
    return {to_python(k): int(v) for k, v in counts.items()}
