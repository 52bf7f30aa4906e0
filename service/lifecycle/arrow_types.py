"""Arrow types of logged JSON values, inferred chunk by chunk and widened so that one file has one schema.

Each column's type is a point in a small lattice: `null` < any type; int64 < double (and lists / structs
merge the same way, pyarrow's permissive promotion); two types that do not merge (a number and a string, a
bool and a number) make the column `JSON`: strings holding the JSON text of each value, marked in the field
metadata so that a reader can tell. A bool never becomes a number and a number never becomes a string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from service.codec import dumps

JSON_META = {b"driftloop.encoding": b"json"}
JSON_TYPE = pa.string()
PROBABILITIES = pa.map_(pa.string(), pa.float64())
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError)


def is_json(field: pa.Field) -> bool:
    return bool(field.metadata) and field.metadata.get(b"driftloop.encoding") == b"json"


def json_field(name: str) -> pa.Field:
    return pa.field(name, JSON_TYPE, metadata=JSON_META)


def json_array(values: Sequence[Any]) -> pa.Array:
    return pa.array([None if v is None else dumps(v) for v in values], JSON_TYPE)


def infer(name: str, values: Sequence[Any]) -> tuple[pa.Field, pa.Array]:
    """The narrowest field holding `values`, and the values as that field's array."""
    try:
        array = pa.array(values)
    except (*_ARROW_ERRORS, OverflowError):
        return json_field(name), json_array(values)
    return pa.field(name, array.type), array


def infer_probabilities(name: str, values: Sequence[Any]) -> tuple[pa.Field, pa.Array]:
    """Class probabilities as map<string, double> (classes differ between versions), else JSON."""
    try:
        return pa.field(name, PROBABILITIES), pa.array(values, PROBABILITIES)
    except (*_ARROW_ERRORS, OverflowError):
        return json_field(name), json_array(values)


Inferrer = Callable[[str, Sequence[Any]], tuple[pa.Field, pa.Array]]


def widen(a: pa.Field, b: pa.Field) -> pa.Field:
    """The least field holding values of both (same name)."""
    if is_json(a) or is_json(b):
        return json_field(a.name)
    if a.type == b.type:
        return a
    if pa.types.is_null(a.type):
        return b
    if pa.types.is_null(b.type):
        return a
    try:
        merged = pa.unify_schemas([pa.schema([a]), pa.schema([b])], promote_options="permissive")
    except _ARROW_ERRORS:
        return json_field(a.name)
    return merged.field(a.name)


def widen_schema(
    current: pa.Schema | None, new: pa.Schema, order: Callable[[list[str]], list[str]]
) -> pa.Schema:
    """Fields of both, widened where they differ, in the order `order` gives the union of names."""
    if current is None:
        return pa.schema([new.field(n) for n in order(new.names)])
    fields = {f.name: f for f in current}
    for f in new:
        fields[f.name] = widen(fields[f.name], f) if f.name in fields else f
    return pa.schema([fields[n] for n in order(list(fields))])


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` (whose fields `schema` widens) as `schema`: missing columns are null, narrower ones cast."""
    n = table.num_rows
    columns: list[pa.Array | pa.ChunkedArray] = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(n, field.type))
            continue
        column = table.column(field.name)
        have = table.schema.field(field.name)
        if have.type == field.type and is_json(have) == is_json(field):
            columns.append(column)
        elif is_json(field):
            columns.append(json_array(column.to_pylist()))
        elif pa.types.is_null(have.type):
            columns.append(pa.nulls(n, field.type))
        else:
            try:
                columns.append(column.cast(field.type))
            except _ARROW_ERRORS:  # e.g. a struct gaining fields: rebuild from Python values
                columns.append(pa.array(column.to_pylist(), field.type))
    return pa.Table.from_arrays(columns, schema=schema)
