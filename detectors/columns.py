"""Turn user data (a DataFrame or a mapping of arrays) into plain numpy columns.

Numeric numpy arrays stay numpy end to end: pandas (~0.25 s of import) loads only for a DataFrame, an object
or boolean column, or value counts, so ``driftloop check`` on numeric Parquet never imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeGuard, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

Data: TypeAlias = "pd.DataFrame | Mapping[str, Any]"
# one column: a numeric numpy array as it came, anything else as a pandas Series
Column: TypeAlias = "np.ndarray[Any, Any] | pd.Series"
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjectArray = npt.NDArray[np.object_]

_NUMBERS = "iuf"  # numpy kinds kept as arrays; booleans are categorical
T = TypeVar("T")


class LazyColumns(Mapping[str, np.ndarray]):
    """A table whose columns are loaded one at a time on access and never kept, so a check holds one column
    of a large file at once (``detectors.profile`` and ``detectors.check`` read each column once).

    Examples
    --------
    >>> table = LazyColumns(["a"], 2, lambda name: np.array([1.0, 2.0]))
    >>> list(table), row_count(table), table["a"].tolist()
    (['a'], 2, [1.0, 2.0])
    """

    def __init__(self, names: Sequence[str], n_rows: int, load: Callable[[str], np.ndarray]) -> None:
        self.names, self.n_rows, self._load = list(names), n_rows, load

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise KeyError(name)
        return self._load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def is_frame(data: object) -> TypeGuard[pd.DataFrame]:
    """True for a pandas DataFrame (without importing pandas: if it is not loaded, nothing is a frame)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(data, pd.DataFrame)


def column_names(data: Data) -> list[str]:
    """Column names of a DataFrame or the keys of a mapping, as strings."""
    return [str(c) for c in data.columns] if is_frame(data) else [str(c) for c in data]


def row_count(data: Data) -> int:
    """Number of rows; every column of a mapping must have the same length."""
    if is_frame(data):
        return int(len(data))
    if isinstance(data, LazyColumns):
        return data.n_rows
    lengths = {name: len(values) for name, values in data.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns have different lengths: {lengths}")
    return next(iter(lengths.values()), 0)


def get_column(data: Data, name: str) -> Column:
    """One column: a numeric numpy array as is, anything else as a pandas Series (no copy where possible)."""
    if is_frame(data):
        return data[name]
    values = data[name]
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in _NUMBERS:
        return values
    return as_series(values)


def per_column(data: Data, names: Sequence[str], work: Callable[[str, Column], T]) -> list[T]:
    """``work(name, column)`` for every name, in order, each column fetched once and dropped before the
    next: a lazy table (``LazyColumns``) then holds one column in memory.

    Serial on purpose: two threads (reads, sorts and binning release the GIL) cost 0.14 s more CPU per
    1M x 20 check (mostly system time: a second column in flight, fresh pages) and gained no wall time on
    the shared 2-core machine (bench/RESULTS.md, 2026-12-02).
    """
    return [work(name, get_column(data, name)) for name in names]


def as_series(values: Any) -> pd.Series:
    """``values`` as a pandas Series (imports pandas)."""
    import pandas as pd

    return values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))


def is_numeric(column: Column) -> bool:
    """True for integer and float columns (booleans count as categorical)."""
    if isinstance(column, np.ndarray):
        return column.dtype.kind in _NUMBERS
    import pandas as pd

    dtype = column.dtype
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def as_float(column: Column, name: str) -> FloatArray:
    """Float64 values with NaN for missing; a ValueError if the column is not numeric."""
    try:
        if isinstance(column, np.ndarray) and column.dtype.kind in _NUMBERS:
            return np.asarray(column, dtype=np.float64)
        return as_series(column).to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column {name!r} must be numeric (it is numeric in the reference): {exc}") from exc


def take(column: Column, rows: IntArray) -> Column:
    """The given rows (positions) of a column."""
    return column[rows] if isinstance(column, np.ndarray) else column.iloc[rows]


def as_objects(column: Column) -> ObjectArray:
    """Values as a numpy object array (numpy scalars for a numeric array)."""
    if isinstance(column, np.ndarray):
        return column.astype(object)
    return column.to_numpy(dtype=object)


def n_unique(column: Column) -> int:
    """Distinct non-missing values."""
    if isinstance(column, np.ndarray) and column.dtype.kind in _NUMBERS:
        present = column[~np.isnan(column)] if column.dtype.kind == "f" else column
        return int(np.unique(present).size)
    return int(as_series(column).nunique(dropna=True))


def to_python(value: Any) -> Any:
    """A numpy scalar as the equal Python scalar, so it survives JSON and matches dict keys."""
    return value.item() if isinstance(value, np.generic) else value


def value_counts(column: Column) -> dict[Any, int]:
    """Counts of the non-missing values, keys as Python scalars."""
    counts = as_series(column).value_counts(dropna=True, sort=False)
    return {to_python(k): int(v) for k, v in counts.items()}
