"""Map domain errors to HTTP answers: 4xx for the caller's mistakes, 503 for what is down."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.logging_writer import LogUnavailable
from service.schema import RecordError
from service.serving import ModelUnavailable, PredictionFailed


def install(app: FastAPI) -> None:
    @app.exception_handler(RecordError)
    async def _record(_: Request, exc: RecordError) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=422)

    @app.exception_handler(PredictionFailed)
    async def _prediction(_: Request, exc: PredictionFailed) -> JSONResponse:
        return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc), "type": "model_error"}]}, 422)

    @app.exception_handler(ModelUnavailable)
    async def _model(_: Request, exc: ModelUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(LogUnavailable)
    async def _log(_: Request, exc: LogUnavailable) -> JSONResponse:
        detail = f"{exc}; the prediction was not served because it could not be logged"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "2"})
