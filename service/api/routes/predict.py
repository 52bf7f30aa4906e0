"""POST /v1/predict: one record or many; every answered prediction is logged."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from service.api.deps import ClientDep, RuntimeDep
from service.api.routes._responses import errors
from service.serving.scoring import Scorer, score

router = APIRouter(prefix="/v1", tags=["serving"], responses=errors(400, 401, 403, 413, 422, 503))


# The one-of rule in the published schema too (a null counts as absent, as in the validator below).
_EXACTLY_ONE: JsonDict = {
    "oneOf": [
        {
            "required": ["features"],
            "properties": {"features": {"type": "object"}, "instances": {"type": "null"}},
        },
        {
            "required": ["instances"],
            "properties": {"instances": {"type": "array", "minItems": 1}, "features": {"type": "null"}},
        },
    ]
}


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_EXACTLY_ONE)

    features: dict[str, Any] | None = Field(default=None, description="One record: feature name -> value.")
    instances: list[dict[str, Any]] | None = Field(default=None, description="Many records.")

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictRequest:
        if (self.features is None) == (self.instances is None):
            raise ValueError("give exactly one of 'features' (one record) or 'instances' (a list of records)")
        if self.instances is not None and not self.instances:
            raise ValueError("'instances' must hold at least one record")
        return self


class PredictionOut(BaseModel):
    prediction_id: str
    prediction: Any
    probabilities: dict[str, float] | None = None
    model_version: str


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[PredictionOut]


@router.post("/predict", response_model=PredictResponse, dependencies=[ClientDep])
async def predict(body: PredictRequest, runtime: RuntimeDep) -> PredictResponse:
    """Score with the default model (DRIFTLOOP_MODEL_NAME)."""
    return await _predict(runtime.scorer, body)


@router.post(
    "/models/{name}/predict",
    response_model=PredictResponse,
    dependencies=[ClientDep],
    responses=errors(404),
)
async def predict_model(name: str, body: PredictRequest, runtime: RuntimeDep) -> PredictResponse:
    """Score with the named model (one of the served models; an unknown name is a 404 listing them)."""
    return await _predict(runtime.scorer_for(name), body)


async def _predict(scorer: Scorer, body: PredictRequest) -> PredictResponse:
    single = body.instances is None
    records: list[Any] = [body.features] if single else list(body.instances or [])
    prefix = ("body", "features") if single else ("body", "instances")
    r = await score(scorer, records, endpoint="predict", loc_prefix=prefix, indexed=not single)
    probs = r.probabilities
    return PredictResponse(
        model_name=scorer.holder.name,
        model_version=r.model_version,
        predictions=[
            PredictionOut(
                prediction_id=r.ids[i],
                prediction=r.predictions[i],
                probabilities=probs[i] if probs is not None else None,
                model_version=r.model_version,
            )
            for i in range(len(r.ids))
        ],
    )
