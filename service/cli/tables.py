"""Reading `driftloop check`'s CSV and Parquet files into what the detectors take."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from detectors.columns import Data, LazyColumns


def _read_csv(path: Path) -> Data:
    import pandas as pd

    return pd.read_csv(path)


def _read_parquet(path: Path) -> Data:
    """Columns straight to numpy arrays, one at a time and only when the check reads them
    (``LazyColumns``): no DataFrame (whose block consolidation copies every column), no whole table, and
    never more than about one column of either file in memory (the profile and the check read each column
    once)."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    meta = file.schema_arrow.pandas_metadata or {}
    # a pandas index stored as a column is not data (pandas.read_parquet makes it the index)
    index = {c for c in meta.get("index_columns", []) if isinstance(c, str)}

    def load(name: str) -> np.ndarray:
        try:
            column = file.read(columns=[name], use_threads=False).column(0)
        except Exception as exc:  # a damaged file shows only when its column is decoded
            raise CheckError(f"cannot read {path}: {exc}") from exc
        arrays = [a for a in map(_numbers, column.chunks) if a is not None]
        if column.num_chunks and len(arrays) == column.num_chunks:
            return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        try:  # strings and the rest: nulls become NaN (numbers) or None (objects)
            values: np.ndarray = column.to_numpy()
        except Exception:  # nested or extension types: pandas knows how to lay them out
            values = column.to_pandas().to_numpy()
        return values

    names = [name for name in file.schema_arrow.names if name not in index]
    return LazyColumns(names, file.metadata.num_rows, load)


def _numbers(chunk: Any) -> np.ndarray | None:
    """An Arrow integer or float array as numpy, without pandas (which pyarrow's ``to_numpy`` imports,
    ~0.25 s): the data buffer itself when nothing is null, else float64 with NaN for nulls."""
    import pyarrow as pa

    kind = "f" if pa.types.is_floating(chunk.type) else None
    kind = kind or ("i" if pa.types.is_signed_integer(chunk.type) else None)
    kind = kind or ("u" if pa.types.is_unsigned_integer(chunk.type) else None)
    if kind is None:
        return None
    dtype = np.dtype(f"{kind}{chunk.type.bit_width // 8}")
    n, offset = len(chunk), chunk.offset
    validity, data = chunk.buffers()[:2]
    values = np.frombuffer(data, dtype=dtype, count=n, offset=offset * dtype.itemsize)
    if not chunk.null_count:
        return values
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    out = values.astype(np.float64)
    out[~bits[offset : offset + n].astype(bool)] = np.nan
    return out


READERS: dict[str, Callable[[Path], Data]] = {
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
}


class CheckError(Exception):
    """A user error: reported on stderr with exit code 2."""
