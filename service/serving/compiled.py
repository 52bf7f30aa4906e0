"""A cheaper equivalent of a fitted `ColumnTransformer.transform` for validated records.

On a batch of a few rows, scikit-learn's ColumnTransformer spends ~10 ms in DataFrame indexing, feature
name checks and input validation for a microsecond of arithmetic; with several models in one process each
micro-batch is small and that fixed cost decides the throughput. For the common encoders (StandardScaler,
OneHotEncoder, OrdinalEncoder, passthrough, drop) this module does the same arithmetic on numpy arrays
built straight from the records. It is used only if, at load, its output on probe rows is identical
(type, dtype, values, sparsity structure) to scikit-learn's; anything else keeps scikit-learn's path, and
so does a batch it cannot take as is (a null, or an unknown category where the encoder raises). A dense
float64 output first tries the one-array build of service/serving/dense.py (fewer numpy calls a batch);
these blocks serve the rest (sparse or integer outputs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from service.serving.dense import DenseRows, category_tables, is_passthrough, selected_names
from service.serving.dense import Unsupported as DenseUnsupported
from service.serving.records import Column

log = logging.getLogger("driftloop.serving")

_FLOAT = {"double", "float"}
_INT = {"long", "integer"}
_UNKNOWN = "\x01driftloop probe: unknown category"

Rows = Sequence[dict[str, Any]]
Block = Callable[[Rows], Any]  # rows -> this transformer's output, or None: the batch needs scikit-learn


class Unsupported(ValueError):
    """This transformer has no compiled equivalent here."""


def _numeric(cols: list[str], types: dict[str, str]) -> Callable[[Rows], np.ndarray | None]:
    """The columns as the DataFrame path hands them on: float64, or int64 when every column is integral."""
    if any(types[c] not in _FLOAT | _INT for c in cols):
        raise Unsupported("a non-numeric column")
    dtype = np.float64 if any(types[c] in _FLOAT for c in cols) else np.int64

    def block(rows: Rows) -> np.ndarray | None:
        values = [[r[c] for c in cols] for r in rows]
        if any(v is None for row in values for v in row):
            return None  # NaN handling stays scikit-learn's
        return np.array(values, dtype=dtype).reshape(len(rows), len(cols))

    return block


def _scaler(step: StandardScaler, cols: list[str], types: dict[str, str]) -> Block:
    numeric = _numeric(cols, types)
    mean = step.mean_ if step.with_mean else None
    scale = step.scale_ if step.with_std else None

    def block(rows: Rows) -> np.ndarray | None:
        x = numeric(rows)
        if x is None:
            return None
        x = x.astype(np.float64, copy=False)
        if mean is not None:  # the same in-place operations as StandardScaler.transform
            x -= mean.astype(x.dtype)
        if scale is not None:
            x /= scale.astype(x.dtype)
        return x

    return block


def _codes(step: OneHotEncoder | OrdinalEncoder, cols: list[str]) -> Callable[[Rows], Any]:
    """rows -> (category codes, known mask), or None when a value is not a string (a null)."""
    tables = category_tables(step)

    def codes(rows: Rows) -> tuple[np.ndarray, np.ndarray] | None:
        values = [[r[c] for c in cols] for r in rows]
        if any(not isinstance(v, str) for row in values for v in row):
            return None
        found = [[t.get(v, -1) for t, v in zip(tables, row, strict=True)] for row in values]
        x_int = np.array(found, dtype=int).reshape(len(rows), len(cols))
        known = x_int >= 0
        x_int[~known] = 0
        return x_int, known

    return codes


def _onehot(step: OneHotEncoder, cols: list[str], dense: bool) -> Block:
    if step.drop is not None or step.handle_unknown not in ("ignore", "error"):
        raise Unsupported("drop, or a warning/infrequent unknown rule")
    codes = _codes(step, cols)
    offsets = np.cumsum([0] + [len(c) for c in step.categories_])
    width, strict = int(offsets[-1]), step.handle_unknown == "error"

    def block(rows: Rows) -> Any:
        coded = codes(rows)
        if coded is None or (strict and not coded[1].all()):
            return None  # scikit-learn raises its own error for an unknown category
        x_int, known = coded
        n = len(rows)
        if dense or not step.sparse_output:
            out = np.zeros((n, width), dtype=step.dtype)
            r, f = np.nonzero(known)
            out[r, x_int[r, f] + offsets[f]] = 1
            return out
        mask = known.ravel()
        indices = (x_int + offsets[:-1]).ravel()[mask]
        indptr = np.zeros(n + 1, dtype=int)
        np.cumsum(known.sum(axis=1), out=indptr[1:])
        data = np.ones(indptr[-1])
        return sparse.csr_matrix((data, indices, indptr), shape=(n, width), dtype=step.dtype)

    return block


def _ordinal(step: OrdinalEncoder, cols: list[str]) -> Block:
    if step.handle_unknown not in ("use_encoded_value", "error"):
        raise Unsupported("unknown rule")
    codes = _codes(step, cols)
    strict = step.handle_unknown == "error"

    def block(rows: Rows) -> np.ndarray | None:
        coded = codes(rows)
        if coded is None or (strict and not coded[1].all()):
            return None
        x_int, known = coded
        out: np.ndarray = x_int.astype(step.dtype, copy=False)
        if not strict:
            out[~known] = step.unknown_value
        return out

    return block


def _block(step: Any, cols: list[str], types: dict[str, str], dense: bool) -> Block:
    kind = type(step)
    if kind is StandardScaler:
        return _scaler(step, cols, types)
    if kind is OneHotEncoder:
        return _onehot(step, cols, dense)
    if kind is OrdinalEncoder:
        return _ordinal(step, cols)
    if is_passthrough(step):
        return _numeric(cols, types)
    raise Unsupported(f"{kind.__name__} is not compiled")


class CompiledColumns:
    """`transform(rows)` equals `ct.transform(DataFrame.from_records(rows))`, or is None for a batch that
    needs scikit-learn."""

    def __init__(self, ct: ColumnTransformer, columns: tuple[Column, ...]) -> None:
        if type(ct) is not ColumnTransformer:
            raise Unsupported("not a ColumnTransformer")
        types = {c.name: c.type for c in columns}
        names = list(getattr(ct, "feature_names_in_", []))
        if names != [c.name for c in columns]:
            raise Unsupported("fitted on other columns than the signature's")
        self._sparse = bool(ct.sparse_output_)
        self._blocks: list[Block] = []
        for _, step, selected in ct.transformers_:
            cols = selected_names(names, selected)
            if step == "drop" or not cols:
                continue
            if not all(isinstance(c, str) and c in types for c in cols):
                raise Unsupported("a column selection other than names or positions")
            self._blocks.append(_block(step, cols, types, dense=not self._sparse))
        if not self._blocks:
            raise Unsupported("no output columns")

    def transform(self, rows: Rows) -> Any:
        out = []
        for block in self._blocks:
            x = block(rows)
            if x is None:
                return None
            out.append(x)
        if self._sparse:
            return sparse.hstack(out).tocsr()
        return out[0] if len(out) == 1 else np.hstack(out)


Compiled = DenseRows | CompiledColumns


def probe_rows(ct: ColumnTransformer, columns: tuple[Column, ...]) -> list[dict[str, Any]]:
    """Rows covering every fitted category of every encoded column, an unknown one and a few numbers."""
    cats: dict[str, list[str]] = {}
    for _, step, selected in ct.transformers_:
        if isinstance(step, OneHotEncoder | OrdinalEncoder) and hasattr(step, "categories_"):
            for name, values in zip(np.atleast_1d(selected), step.categories_, strict=False):
                if isinstance(name, str):
                    cats[name] = [str(v) for v in values] + [_UNKNOWN]
    n = max([len(v) for v in cats.values()] + [4])
    numbers = [0.0, 1.5, -2.25, 1234.5678, 3e-4, -7.0]
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for c in columns:
            if c.name in cats:
                row[c.name] = cats[c.name][i % len(cats[c.name])]
            elif c.type in _INT:
                row[c.name] = int(numbers[i % len(numbers)] * 3)
            elif c.type in _FLOAT:
                row[c.name] = numbers[(i * 5) % len(numbers)] * (i + 1)
            else:
                row[c.name] = "x" if c.type == "string" else bool(i % 2)
        rows.append(row)
    return rows


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b) or a.shape != b.shape or a.dtype != b.dtype:
        return False
    if sparse.issparse(a):
        a, b = sparse.csr_matrix(a), sparse.csr_matrix(b)  # type: ignore[call-overload]
        return bool(
            np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data)
        )
    return bool(np.array_equal(a, b))


def compile_columns(ct: Any, columns: tuple[Column, ...], final: Any) -> Compiled | None:
    """The first compiled transform (one array, then block-wise) that reproduces scikit-learn's on probe
    rows (and with which the final step gives the same answers), else None."""
    for build in (DenseRows, CompiledColumns):
        try:
            compiled = build(ct, columns)
            rows = [r for r in probe_rows(ct, columns) if _takes(ct, r)]
            expected = ct.transform(pd.DataFrame.from_records(rows, columns=[c.name for c in columns]))
            got = compiled.transform(rows)
            same = got is not None and _same(expected, got)
            if same:
                same = bool(
                    np.array_equal(np.asarray(final.predict(expected)), np.asarray(final.predict(got)))
                )
        except (Unsupported, DenseUnsupported) as exc:
            log.info("%s: not used: %s", build.__name__, exc)
            continue
        except Exception as exc:  # the probe itself failed in scikit-learn: keep its path
            log.info("scikit-learn's own ColumnTransformer path (probe failed: %s)", exc)
            return None
        if same:
            return compiled
        log.warning(
            "%s differs from scikit-learn's ColumnTransformer on probe rows; not used", build.__name__
        )
    return None


def _takes(ct: ColumnTransformer, row: dict[str, Any]) -> bool:
    """False for a probe row with an unknown category where an encoder raises on it."""
    strict = any(getattr(step, "handle_unknown", None) == "error" for _, step, _ in ct.transformers_)
    return not strict or _UNKNOWN not in row.values()
