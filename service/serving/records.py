"""Validation of request records against the model's input signature."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

_NUMERIC = {"double", "float"}
_INTEGER = {"long", "integer"}
# What the column's dtype can hold: a value that does not fit would be inf / wrap / fail after conversion.
_INT_RANGE = {"long": (-(2**63), 2**63 - 1), "integer": (-(2**31), 2**31 - 1)}
_FLOAT32_MAX = 3.4028234663852886e38
# Default bound on |x|: float64 keeps integers exact to 2**53 ~ 9e15, and squares (scalers, variances) of
# 1e15 summed over a billion rows stay far below the float64 maximum of 1.8e308 (docs/limits.md).
MAX_ABS_DEFAULT = 1e15


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = True


class RecordError(ValueError):
    """One or more records do not match the schema; `errors` has FastAPI-style items."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


def _error(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


def _utf8(value: str) -> bool:
    """False for strings JSON allows but UTF-8 cannot store (lone surrogates such as "\\ud800")."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _number(column: Column, value: Any, loc: list[str | int], max_abs: float) -> tuple[Any, Any]:
    """The float of `value` as the column's dtype holds it, or the error (not finite, out of bounds)."""
    try:
        number = float(value)  # a JSON integer of 400 digits: OverflowError
    except OverflowError:
        number = math.inf
    if column.type == "float" and math.isfinite(number) and abs(number) > _FLOAT32_MAX:
        number = math.copysign(math.inf, number)  # what numpy's float32 makes of it
    if not math.isfinite(number):
        if column.required or not math.isnan(number):
            return None, _error(
                loc,
                f"'{column.name}' must be finite as a {column.type}, got {_shown(value)}",
                "finite_number",
            )
        return None, None
    if abs(number) > max_abs:
        return None, _bound(column, value, loc, max_abs)
    return number, None


def _bound(column: Column, value: Any, loc: list[str | int], max_abs: float) -> dict[str, Any]:
    return _error(
        loc,
        f"'{column.name}' must be within -{max_abs:g}..{max_abs:g} (DRIFTLOOP_MAX_ABS_FEATURE), "
        f"got {_shown(value)}",
        "less_than_equal",
    )


def _integer(column: Column, value: Any, loc: list[str | int], max_abs: float) -> tuple[Any, Any]:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None, _error(loc, f"'{column.name}' must be an integer, got {_shown(value)}", "int_type")
    low, high = _INT_RANGE[column.type]
    if not low <= value <= high:
        return None, _error(
            loc, f"'{column.name}' must fit a {column.type} ({low}..{high}), got {_shown(value)}", "int_range"
        )
    if abs(value) > max_abs:
        return None, _bound(column, value, loc, max_abs)
    return value, None


def _check_value(
    column: Column, value: Any, loc: list[str | int], max_abs: float = MAX_ABS_DEFAULT
) -> tuple[Any, dict[str, Any] | None]:
    if value is None:
        if column.required:
            return None, _error(loc, f"'{column.name}' is required and may not be null", "missing")
        return None, None
    kind = column.type
    if kind in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, _error(
                loc, f"'{column.name}' must be a number, got {type(value).__name__}", "float_type"
            )
        return _number(column, value, loc, max_abs)
    if kind in _INTEGER:
        return _integer(column, value, loc, max_abs)
    if kind == "boolean":
        if not isinstance(value, bool):
            return None, _error(loc, f"'{column.name}' must be true or false, got {value!r}", "bool_type")
        return value, None
    if kind == "string":
        if not isinstance(value, str):
            return None, _error(
                loc, f"'{column.name}' must be a string, got {type(value).__name__}", "string_type"
            )
        if "\x00" in value:
            return None, _error(loc, f"'{column.name}' may not contain NUL characters", "string_value")
        if not value.isascii() and not _utf8(value):
            return None, _error(loc, f"'{column.name}' holds a lone UTF-16 surrogate", "string_value")
        return value, None
    return value, None


def validate_records(
    records: list[Any],
    columns: tuple[Column, ...],
    *,
    loc_prefix: tuple[str | int, ...] = ("body", "instances"),
    indexed: bool = True,
    max_abs: float = MAX_ABS_DEFAULT,
) -> list[dict[str, Any]]:
    """Coerce records to the schema or raise `RecordError` naming every bad field of every record.

    A clean record holds only values its column's dtype represents exactly enough to be scored, stored,
    re-read and trained on: finite, inside the dtype's range and within `max_abs`.
    """
    names = {c.name for c in columns}
    clean: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        base: list[str | int] = [*loc_prefix, i] if indexed else list(loc_prefix)
        if not isinstance(record, dict):
            errors.append(_error(base, "each record must be a JSON object of feature values", "dict_type"))
            continue
        row: dict[str, Any] = {}
        for column in columns:
            loc = [*base, column.name]
            if column.name not in record:
                if column.required:
                    errors.append(_error(loc, f"missing feature '{column.name}'", "missing"))
                else:
                    row[column.name] = None
                continue
            value, err = _check_value(column, record[column.name], loc, max_abs)
            if err:
                errors.append(err)
            row[column.name] = value
        for extra in record.keys() - names:
            errors.append(_error([*base, str(extra)], f"unknown feature '{extra}'", "extra_forbidden"))
        clean.append(row)
    if errors:
        raise RecordError(errors)
    return clean
