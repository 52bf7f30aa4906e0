"""POST /invocations: MLflow's scoring-server protocol, so MLflow clients switch by changing the URL."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response

from service.api.deps import require_client
from service.api.routes._responses import errors
from service.runtime import Runtime
from service.serving.scoring import score

router = APIRouter(tags=["serving"], responses=errors(401, 403, 413, 415, 422, 503))

_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _bad(msg: str, loc: list[str | int] | None = None) -> HTTPException:
    return HTTPException(422, [{"loc": loc or ["body"], "msg": msg, "type": "value_error"}])


def parse_payload(payload: Any) -> tuple[list[Any], tuple[str | int, ...]]:
    """Turn any of MLflow's four JSON payload shapes into records."""
    if not isinstance(payload, dict):
        raise _bad(f"the body must be a JSON object with one of the keys {', '.join(_FORMATS)}")
    keys = [k for k in _FORMATS if k in payload]
    if len(keys) != 1 or len(payload) - len([k for k in ("params",) if k in payload]) != 1:
        raise _bad(
            f"give exactly one of {', '.join(_FORMATS)} (got {', '.join(map(str, payload)) or 'none'})"
        )
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
            raise _bad("dataframe_split needs 'columns' (a list) and 'data' (a list of rows)", ["body", key])
        columns, data = value["columns"], value.get("data")
        if not isinstance(data, list) or not all(
            isinstance(r, list) and len(r) == len(columns) for r in data
        ):
            raise _bad(
                f"each row of dataframe_split.data must be a list of {len(columns)} values", ["body", key]
            )
        return [dict(zip(columns, row, strict=True)) for row in data], ("body", key, "data")
    if isinstance(value, dict):  # columnar: {"col": [values...]}
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise _bad(f"columnar {key} needs lists of equal length for every column", ["body", key])
        n = lengths.pop()
        return [{c: value[c][i] for c in value} for i in range(n)], ("body", key)
    if not isinstance(value, list) or not value:
        raise _bad(f"{key} must be a non-empty list of records", ["body", key])
    return value, ("body", key)


@router.post("/invocations")
async def invocations(request: Request) -> Response:
    # No FastAPI dependencies on the hot path: solving them was a visible share of per-request CPU.
    runtime: Runtime = request.app.state.runtime
    await require_client(request, runtime)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type != "application/json":
        raise HTTPException(415, f"content type '{content_type}' is not supported: send application/json")
    body = await request.body()
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"malformed JSON: {exc}") from None
    records, prefix = parse_payload(payload)
    result = await score(runtime.scorer, records, endpoint="invocations", loc_prefix=prefix)
    return Response(orjson.dumps({"predictions": result.predictions}), media_type="application/json")
