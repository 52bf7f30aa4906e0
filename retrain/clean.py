"""Rows a model can learn from: drop the ones whose numbers would overflow its arithmetic.

The serving API refuses such values at the door (``docs/limits.md``), but a log written before that check,
by another tool or by hand may still hold them, and one ``1e308`` squared in a scaler turns a whole
training set into NaN. So training, evaluation and reports drop those rows, say how many, and go on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

# Same default bound as serving: float64 keeps integers exact to 2**53 ~ 9e15 and squares of 1e15 summed
# over a billion rows stay below the float64 maximum (1.8e308).
MAX_ABS = 1e15


def _bad_number(value: Any, max_abs: float) -> bool:
    """True for a number the model cannot use: infinite, beyond `max_abs`, or too big for a double."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return False
    try:
        number = float(value)
    except OverflowError:
        return True
    return math.isinf(number) or abs(number) > max_abs


def unusable(frame: pd.DataFrame, columns: Sequence[str], *, max_abs: float = MAX_ABS) -> pd.Series:
    """A boolean mask of the rows with an unusable number in any of `columns` (NaN is a missing value,
    left to the model's own imputation; text is left alone).

    >>> df = pd.DataFrame({"x": [1.0, 1e308, float("inf"), None], "c": ["a", "b", "c", "d"]})
    >>> unusable(df, ["x", "c"]).tolist()
    [False, True, True, False]
    """
    mask = pd.Series(False, index=frame.index)
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            continue
        if pd.api.types.is_numeric_dtype(values):
            as_float = values.astype("float64")
            mask |= np.isinf(as_float) | (as_float.abs() > max_abs)
        else:  # object: JSON mixed types, or integers beyond int64
            mask |= values.map(lambda v: _bad_number(v, max_abs)).astype(bool)
    return mask


def usable_rows(
    frame: pd.DataFrame, columns: Sequence[str], *, max_abs: float = MAX_ABS
) -> tuple[pd.DataFrame, int]:
    """(`frame` without its unusable rows, how many were dropped); the index is kept."""
    if frame.empty:
        return frame, 0
    bad = unusable(frame, columns, max_abs=max_abs)
    return frame.loc[~bad], int(bad.sum())
