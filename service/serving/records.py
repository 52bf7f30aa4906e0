"""Validation of request records against the model's input signature."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

_NUMERIC = {"double", "float"}
_INTEGER = {"long", "integer"}


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


def _check_value(column: Column, value: Any, loc: list[str | int]) -> tuple[Any, dict[str, Any] | None]:
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
        if not math.isfinite(value):
            if column.required:
                return None, _error(loc, f"'{column.name}' must be finite, got {value}", "finite_number")
            return None, None
        return float(value), None
    if kind in _INTEGER:
        if isinstance(value, float) and value.is_integer():
            return int(value), None
        if isinstance(value, bool) or not isinstance(value, int):
            return None, _error(loc, f"'{column.name}' must be an integer, got {value!r}", "int_type")
        return value, None
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
) -> list[dict[str, Any]]:
    """Coerce records to the schema or raise `RecordError` naming every bad field of every record."""
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
            value, err = _check_value(column, record[column.name], loc)
            if err:
                errors.append(err)
            row[column.name] = value
        for extra in record.keys() - names:
            errors.append(_error([*base, str(extra)], f"unknown feature '{extra}'", "extra_forbidden"))
        clean.append(row)
    if errors:
        raise RecordError(errors)
    return clean
