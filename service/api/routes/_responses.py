"""Error answers declared once, so /openapi.json lists every status a route can give (schemathesis checks)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_WHY = {
    400: "Malformed request body (not JSON).",
    401: "Bearer token missing.",
    403: "Bearer token wrong, or admin endpoints disabled.",
    404: "Not found.",
    409: "Conflicts with the current state.",
    413: "Body over DRIFTLOOP_MAX_BODY_BYTES or batch over DRIFTLOOP_MAX_BATCH_ROWS.",
    415: "Content type is not application/json.",
    422: "Invalid request; `detail` names each bad field.",
    503: "A dependency (database, model, registry) is unavailable; retry later.",
}


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Any]]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the given status codes."""
    return {code: {"model": ErrorBody, "description": _WHY[code]} for code in codes}
