"""A fitted ColumnTransformer's dense float64 output built in one array (service/serving/compiled.py).

The block-wise compiled path spends ~15 numpy calls per batch (one array per block, then `np.hstack`);
with five models in one process a batch holds a few rows and those calls are most of its cost. Here the
numeric columns become one array written into the output's columns, the scalers run in place on their
slices (the same elementwise operations as StandardScaler.transform), and every one-hot and ordinal code
is one `put`. Only for a dense float64 output of StandardScaler, passthrough, OneHotEncoder and
OrdinalEncoder steps; compiled.py checks the result against scikit-learn's at load as for any other path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from service.serving.records import Column

_NUMBER = {"double", "float", "long", "integer"}
_FLOAT = {"double", "float"}

Rows = Sequence[dict[str, Any]]


class Unsupported(ValueError):
    """This ColumnTransformer has no one-array equivalent here."""


@dataclass(frozen=True)
class _Coded:
    """One encoded column: its category codes and where they go in an output row."""

    column: str
    codes: dict[str, int]
    offset: int
    onehot: bool  # else ordinal
    strict: bool  # an unknown category raises in scikit-learn: such a batch goes there
    unknown: float  # an ordinal unknown's value


def category_tables(step: OneHotEncoder | OrdinalEncoder) -> list[dict[str, int]]:
    """Per encoded column, category -> code, for string categories without infrequent or missing ones."""
    if getattr(step, "_infrequent_enabled", False) or getattr(step, "_missing_indices", None):
        raise Unsupported("infrequent or missing-value categories")
    tables = []
    for cats in step.categories_:
        if cats.dtype != object or not all(isinstance(c, str) for c in cats):
            raise Unsupported("non-string categories")
        tables.append({c: i for i, c in enumerate(cats.tolist())})
    return tables


def _categories(step: OneHotEncoder | OrdinalEncoder) -> list[dict[str, int]]:
    if np.dtype(step.dtype) != np.float64:
        raise Unsupported("an encoder dtype other than float64")
    return category_tables(step)


def selected_names(names: list[str], selected: Any) -> list[Any]:
    """A transformer's column selection as names (positions resolved against the fitted names)."""
    return [names[c] if isinstance(c, int | np.integer) else c for c in np.atleast_1d(selected)]


def is_passthrough(step: Any) -> bool:
    """'passthrough', or a FunctionTransformer that passes its input through unchanged."""
    if isinstance(step, str):
        return step == "passthrough"
    return type(step) is FunctionTransformer and step.func is None and not step.validate


class DenseRows:
    """`transform(rows)` equals `ct.transform(DataFrame.from_records(rows))` when that is a dense float64
    array, or is None for a batch that needs scikit-learn (a null, an unknown category where it raises)."""

    def __init__(self, ct: ColumnTransformer, columns: tuple[Column, ...]) -> None:
        if type(ct) is not ColumnTransformer or ct.sparse_output_:
            raise Unsupported("not a dense ColumnTransformer")
        by_name = {c.name: c for c in columns}
        names = list(getattr(ct, "feature_names_in_", []))
        if names != [c.name for c in columns]:
            raise Unsupported("fitted on other columns than the signature's")
        numeric: list[str] = []
        positions: list[int] = []
        self._scalers: list[tuple[slice, np.ndarray | None, np.ndarray | None]] = []
        self._coded: list[_Coded] = []
        floats = False  # an all-integer passthrough output stays int64 in scikit-learn
        width = 0
        for _, step, selected in ct.transformers_:
            cols = selected_names(names, selected)
            if (isinstance(step, str) and step == "drop") or not cols:
                continue
            if not all(isinstance(c, str) and c in by_name for c in cols):
                raise Unsupported("a column selection other than names or positions")
            kind = type(step)
            if kind is StandardScaler or is_passthrough(step):
                if any(by_name[c].type not in _NUMBER for c in cols):
                    raise Unsupported("a non-numeric column")
                if kind is StandardScaler:
                    floats = True
                    self._scalers.append((
                        slice(width, width + len(cols)),
                        step.mean_ if step.with_mean else None,
                        step.scale_ if step.with_std else None,
                    ))  # fmt: skip
                floats = floats or any(by_name[c].type in _FLOAT for c in cols)
                numeric += cols
                positions += range(width, width + len(cols))
                width += len(cols)
            elif kind is OneHotEncoder:
                if step.drop is not None or step.handle_unknown not in ("ignore", "error"):
                    raise Unsupported("drop, or a warning/infrequent unknown rule")
                floats = True
                for col, codes in zip(cols, _categories(step), strict=True):
                    self._coded.append(_Coded(col, codes, width, True, step.handle_unknown == "error", 0.0))
                    width += len(codes)
            elif kind is OrdinalEncoder:
                if step.handle_unknown not in ("use_encoded_value", "error"):
                    raise Unsupported("unknown rule")
                floats, strict = True, step.handle_unknown == "error"
                unknown = 0.0 if strict else float(step.unknown_value)
                for col, codes in zip(cols, _categories(step), strict=True):
                    self._coded.append(_Coded(col, codes, width, False, strict, unknown))
                    width += 1
            else:
                raise Unsupported(f"{kind.__name__} is not compiled")
        if not floats or width == 0:
            raise Unsupported("not a float64 output")
        self.width = width
        self._numeric = numeric
        self._row_values = itemgetter(*numeric) if numeric else None
        # numeric blocks side by side (the usual layout) are one slice: a cheaper assignment than an index
        together = bool(positions) and positions == list(range(positions[0], positions[-1] + 1))
        self._positions: slice | list[int] = slice(positions[0], positions[-1] + 1) if together else positions
        self._nullable = any(not by_name[c].required for c in numeric)

    def transform(self, rows: Rows) -> np.ndarray | None:
        n = len(rows)
        out = np.zeros((n, self.width))
        if self._row_values is not None:
            get = self._row_values
            # None (a null in a column that allows it) becomes NaN here; NaN handling stays scikit-learn's
            x = np.array([get(r) for r in rows], dtype=np.float64).reshape(n, len(self._numeric))
            if self._nullable and np.isnan(x).any():
                return None
            out[:, self._positions] = x
            for where, mean, scale in self._scalers:
                if mean is not None:
                    out[:, where] -= mean
                if scale is not None:
                    out[:, where] /= scale
        if self._coded:
            index: list[int] = []
            value: list[float] = []
            width = self.width
            for coded in self._coded:
                codes, column, offset = coded.codes, coded.column, coded.offset
                for i, row in enumerate(rows):
                    category = row[column]
                    code = codes.get(category)
                    if code is None:
                        if category.__class__ is not str or coded.strict:
                            return None
                        if coded.onehot:
                            continue  # handle_unknown="ignore": all zeros
                        index.append(i * width + offset)
                        value.append(coded.unknown)
                    elif coded.onehot:
                        index.append(i * width + offset + code)
                        value.append(1.0)
                    else:
                        index.append(i * width + offset)
                        value.append(float(code))
            out.put(index, value)
        return out
