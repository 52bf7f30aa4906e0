"""POST /v1/feedback: ground-truth labels for logged predictions, in bulk and idempotent."""

from __future__ import annotations

import uuid
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from service.api.deps import ClientDep, SessionDep
from service.api.routes._responses import errors
from service.serving import store as repository
from service.serving.records import MAX_ABS_DEFAULT

router = APIRouter(prefix="/v1", tags=["serving"], responses=errors(400, 401, 403, 413, 422, 503))


def _storable(label: str) -> str:
    # JSON allows "\\ud800" (a lone surrogate); no database can store it as text.
    try:
        label.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("label holds a lone UTF-16 surrogate") from None
    return label


# Numeric labels: within the default feature bound (docs/limits.md), so a regression target squared in a
# loss or metric stays finite and an integer label fits int64 (the JSON codec's range).
MAX_ABS_LABEL = MAX_ABS_DEFAULT
Label = (
    StrictBool
    | Annotated[StrictInt, Field(ge=-int(MAX_ABS_LABEL), le=int(MAX_ABS_LABEL))]
    | Annotated[StrictFloat, Field(allow_inf_nan=False, ge=-MAX_ABS_LABEL, le=MAX_ABS_LABEL)]
    | Annotated[StrictStr, Field(max_length=200), AfterValidator(_storable)]
)


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: uuid.UUID
    label: Label


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[FeedbackItem] = Field(min_length=1, max_length=10_000)


class FeedbackItemResult(BaseModel):
    prediction_id: str
    status: str = Field(description="stored | unchanged | updated | unknown_prediction")


class FeedbackResponse(BaseModel):
    stored: int
    unchanged: int
    updated: int
    unknown: int
    items: list[FeedbackItemResult]


@router.post("/feedback", response_model=FeedbackResponse, dependencies=[ClientDep])
def feedback(body: FeedbackRequest, session: SessionDep) -> FeedbackResponse:
    items = [(str(item.prediction_id), item.label) for item in body.items]
    try:
        outcomes = repository.record_feedback(session, items=items)
        session.commit()
    except sa.exc.IntegrityError:
        # retention deleted a prediction between our read and the commit: read again, it is now unknown
        session.rollback()
        outcomes = repository.record_feedback(session, items=items)
        session.commit()
    counts = {s: sum(o.status == s for o in outcomes) for s in ("stored", "unchanged", "updated")}
    return FeedbackResponse(
        **counts,
        unknown=sum(o.status == "unknown_prediction" for o in outcomes),
        items=[FeedbackItemResult(prediction_id=o.prediction_id, status=o.status) for o in outcomes],
    )
