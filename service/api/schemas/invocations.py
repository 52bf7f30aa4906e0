"""MLflow's scoring protocol on the wire: a request body (JSON, CSV or Parquet) -> records + params.

Matches `mlflow.pyfunc.scoring_server.invocations` (MLflow 3): the same content types and charset rule
(415 otherwise), the four JSON shapes, CSV with the header row as columns (`pandas.read_csv`, string
columns read as text so "007" stays "007"), Parquet via `pandas.read_parquet`. Unlike MLflow, bad input
is a 422 naming each bad field (the records are then validated against the signature in serving).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import HTTPException

from service.serving.records import Column

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"
CONTENT_TYPE_PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = (CONTENT_TYPE_JSON, CONTENT_TYPE_CSV, CONTENT_TYPE_PARQUET)
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Invocation:
    records: list[Any]
    loc_prefix: Loc
    # MLflow's sklearn flavor ignores params (`_SklearnModelWrapper.predict` never reads them); they are
    # checked to be an object, as MLflow's client does, and otherwise ignored.
    params: dict[str, Any] | None = None


def _bad(msg: str, loc: list[str | int] | None = None) -> HTTPException:
    return HTTPException(422, [{"loc": loc or ["body"], "msg": msg, "type": "value_error"}])


def media_type(header: str | None) -> str:
    """The media type of a Content-Type header, or a 415 for what MLflow's server refuses."""
    parts = [p.strip() for p in (header or CONTENT_TYPE_JSON).split(";")]
    mime = parts[0].lower()
    params = {
        k.strip().lower(): v.strip().strip('"') for k, _, v in (p.partition("=") for p in parts[1:] if p)
    }
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise HTTPException(415, "the scoring server only supports UTF-8")
    if unexpected := sorted(set(params) - {"charset"}):
        raise HTTPException(415, f"unrecognized content type parameters: {', '.join(unexpected)}")
    if mime not in CONTENT_TYPES:
        raise HTTPException(
            415, f"content type '{mime}' is not supported: send one of {', '.join(CONTENT_TYPES)}"
        )
    return mime


def _check_columns(columns: list[Any], loc: list[str | int]) -> None:
    """Column names are strings, each given once (a dict of the row would silently keep the last)."""
    seen: set[str] = set()
    for i, name in enumerate(columns):
        if not isinstance(name, str):
            raise _bad(f"column names must be strings, got {type(name).__name__}", [*loc, i])
        if name in seen:
            raise _bad(f"column {name!r} is given more than once", [*loc, i])
        seen.add(name)


def parse_json(payload: Any) -> Invocation:
    """Any of MLflow's four JSON payload shapes (plus `params`) -> records."""
    if not isinstance(payload, dict):
        raise _bad(f"the body must be a JSON object with one of the keys {', '.join(FORMATS)}")
    keys = [k for k in FORMATS if k in payload]
    if len(keys) != 1 or len(payload) - ("params" in payload) != 1:
        raise _bad(f"give exactly one of {', '.join(FORMATS)} (got {', '.join(map(str, payload)) or 'none'})")
    params = payload.get("params")
    if params is not None and not isinstance(params, dict):
        raise _bad(f"params must be a JSON object, got {type(params).__name__}", ["body", "params"])
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
            raise _bad("dataframe_split needs 'columns' (a list) and 'data' (a list of rows)", ["body", key])
        if extra := sorted(set(value) - {"columns", "data", "index"}):
            raise _bad(
                f"dataframe_split takes only columns, data and index (got {', '.join(extra)})", ["body", key]
            )
        columns, data = value["columns"], value.get("data")
        _check_columns(columns, ["body", key, "columns"])
        if not isinstance(data, list) or not all(
            isinstance(r, list) and len(r) == len(columns) for r in data
        ):
            raise _bad(
                f"each row of dataframe_split.data must be a list of {len(columns)} values", ["body", key]
            )
        records = [dict(zip(columns, row, strict=True)) for row in data]
        return Invocation(records, ("body", key, "data"), params)
    if isinstance(value, dict):
        if value and not any(isinstance(v, list) for v in value.values()):
            return Invocation([value], ("body", key), params)  # one record of scalars, as MLflow reads it
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise _bad(f"columnar {key} needs lists of equal length for every column", ["body", key])
        n = lengths.pop()
        return Invocation([{c: value[c][i] for c in value} for i in range(n)], ("body", key), params)
    if not isinstance(value, list) or not value:
        raise _bad(f"{key} must be a non-empty list of records", ["body", key])
    return Invocation(value, ("body", key), params)


def _frame_records(frame: Any) -> list[dict[str, Any]]:
    """Rows of a data frame as plain Python values; NaN (an empty CSV cell) is a missing value."""
    clean = frame.astype(object).where(frame.notna(), None)
    records: list[dict[str, Any]] = clean.to_dict(orient="records")
    return records


def parse_csv(body: bytes, columns: tuple[Column, ...]) -> Invocation:
    """CSV as MLflow reads it: `pandas.read_csv`, the header row names the columns."""
    import pandas as pd

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(f"the CSV body is not valid UTF-8: {exc}") from None
    strings = {c.name: str for c in columns if c.type == "string"}
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=strings)  # type: ignore[arg-type]
    except Exception as exc:  # pandas raises several types for unreadable CSV
        raise _bad(f"could not read the body as CSV with a header row: {exc}"[:500]) from None
    if frame.empty:
        raise _bad("the CSV body needs a header row and at least one data row")
    return Invocation(_frame_records(frame), ("body", "csv"))


def parse_parquet(body: bytes) -> Invocation:
    import pandas as pd

    try:
        frame = pd.read_parquet(io.BytesIO(body))
    except Exception as exc:
        raise _bad(f"could not read the body as Parquet: {exc}"[:500]) from None
    if frame.empty:
        raise _bad("the Parquet body holds no rows")
    return Invocation(_frame_records(frame), ("body", "parquet"))


def parse_body(
    body: bytes, content_type: str | None, columns: Callable[[], tuple[Column, ...]]
) -> Invocation:
    """`columns()` gives the served model's signature (read only for CSV, whose strings it types)."""
    mime = media_type(content_type)
    if mime == CONTENT_TYPE_CSV:
        return parse_csv(body, columns())
    if mime == CONTENT_TYPE_PARQUET:
        return parse_parquet(body)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"malformed JSON: {exc}") from None
    return parse_json(payload)
