"""POST /invocations: MLflow's scoring-server protocol, so MLflow clients switch by changing the URL."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from service.api.deps import require_client
from service.api.routes._responses import errors
from service.api.schemas.invocations import CONTENT_TYPE_JSON, CONTENT_TYPES, parse_body
from service.runtime import Runtime
from service.serving.scoring import score

router = APIRouter(tags=["serving"], responses=errors(401, 403, 413, 415, 422, 503))

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "MLflow's scoring protocol: JSON with one of dataframe_split, dataframe_records, "
        "instances or inputs (and optional `params`, accepted and ignored: scikit-learn models take "
        "none), text/csv with a header row, or Parquet.",
        "content": {t: {"schema": {}} for t in CONTENT_TYPES},
    }
}


async def invoke(request: Request, runtime: Runtime, model: str | None) -> Response:
    """Score with the named model, or the default one (`model=None`)."""
    # No FastAPI dependencies on the hot path: solving them was a visible share of per-request CPU.
    await require_client(request, runtime)  # before the model lookup: a 404 lists the served models
    scorer = runtime.scorer if model is None else runtime.scorer_for(model)
    parsed = parse_body(
        await request.body(), request.headers.get("content-type"), lambda: scorer.holder.current.columns
    )
    result = await score(scorer, parsed.records, endpoint="invocations", loc_prefix=parsed.loc_prefix)
    return Response(orjson.dumps({"predictions": result.predictions}), media_type=CONTENT_TYPE_JSON)


@router.post("/invocations", openapi_extra=_BODY_DOC)
async def invocations(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return await invoke(request, runtime, None)


# The name is read from the matched path, not declared as a parameter: FastAPI's parameter solving was
# the named route's extra CPU over `/invocations` (five models in one process). Documented by hand.
_NAME_PARAMETER = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "title": "Name"},
}


@router.post(
    "/models/{name}/invocations",
    openapi_extra={**_BODY_DOC, "parameters": [_NAME_PARAMETER]},
    responses=errors(404),
)
async def model_invocations(request: Request) -> Response:
    """MLflow's scoring protocol for the named model: point an MLflow client at `/models/{name}`."""
    runtime: Runtime = request.app.state.runtime
    return await invoke(request, runtime, request.path_params["name"])
