"""Map domain errors to HTTP answers: 4xx for the caller's mistakes, 503 for what is down."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from service.serving.fleet import UnknownModel
from service.serving.holder import ModelUnavailable, PredictionFailed
from service.serving.log_writer import LogUnavailable
from service.serving.records import RecordError
from service.serving.scoring import BatchTooLarge

_SENSITIVE = ("secret", "token", "password", "authorization")
_REDACTED = "**redacted**"


def _sensitive(key: Any) -> bool:
    return isinstance(key, str) and any(word in key.lower() for word in _SENSITIVE)


def _redact(value: Any) -> Any:
    """`value` with every field named like a secret or token replaced, at any depth."""
    if isinstance(value, dict):
        return {k: _REDACTED if _sensitive(k) else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def _scrub(errors: Any) -> Any:
    """Validation errors without secrets: a bad `secret` or `token` is named, never echoed (`input`,
    `ctx`), and an object that holds one is echoed with it redacted."""
    clean = []
    for error in errors:
        item = dict(error)
        if any(_sensitive(part) for part in item.get("loc", ())):
            item.pop("input", None)
            item.pop("ctx", None)
        elif "input" in item:
            item["input"] = _redact(item["input"])
        clean.append(item)
    return clean


def _invalid(errors: Any) -> Response:
    # ensure_ascii: bad input may hold a lone UTF-16 surrogate (JSON allows "\\ud800"); echoed raw, it
    # would fail the UTF-8 encode of the answer and turn a 422 into a 500.
    body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _request(_: Request, exc: RequestValidationError) -> Response:
        return _invalid(_scrub(exc.errors()))

    @app.exception_handler(RecordError)
    async def _record(_: Request, exc: RecordError) -> Response:
        return _invalid(exc.errors)

    @app.exception_handler(BatchTooLarge)
    async def _too_large(_: Request, exc: BatchTooLarge) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.exception_handler(PredictionFailed)
    async def _prediction(_: Request, exc: PredictionFailed) -> JSONResponse:
        return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc), "type": "model_error"}]}, 422)

    @app.exception_handler(UnknownModel)
    async def _unknown_model(_: Request, exc: UnknownModel) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "models": list(exc.known)}, status_code=404)

    @app.exception_handler(ModelUnavailable)
    async def _model(_: Request, exc: ModelUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(LogUnavailable)
    async def _log(_: Request, exc: LogUnavailable) -> JSONResponse:
        detail = f"{exc}; the prediction was not served because it could not be logged"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "2"})
