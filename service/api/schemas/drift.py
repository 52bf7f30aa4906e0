"""Response and request models of the drift and episode endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from service.api.schemas.timestamps import Timestamp
from service.config import Settings
from service.db.tables import DriftRun, Episode, FeatureResult
from service.monitor.episodes import links

RunStatus = Literal["drift", "no_drift", "insufficient_data", "no_reference", "invalid_setting"]
RunKind = Literal["drift", "performance"]
#: what a stored run can be: estimated_performance runs come with each drift check (docs/estimation.md)
StoredKind = Literal["drift", "performance", "estimated_performance"]


class FeatureResultPublic(BaseModel):
    feature: str
    kind: str = Field(description="numeric | categorical | prediction | metric")
    method: str
    statistic: float | None
    p_val: float | None
    threshold: float | None
    is_drift: bool
    status: str

    @classmethod
    def of(cls, row: FeatureResult) -> FeatureResultPublic:
        return cls.model_validate(row, from_attributes=True)


class RunPublic(BaseModel):
    id: int
    kind: str
    trigger: str
    model_name: str
    model_version: str
    window_key: str
    window_start: datetime
    window_end: datetime
    n_rows: int
    status: str
    dataset_drift: bool
    drift_share: float
    is_breach: bool
    message: str
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    links: dict[str, str]

    @classmethod
    def of(cls, run: DriftRun, settings: Settings) -> RunPublic:
        assert run.id is not None
        summary = orjson.loads(run.summary)
        return cls(
            **run.model_dump(exclude={"summary"}),
            message=str(summary.get("message", "")),
            links=links(settings, run.id),
        )


class RunDetail(RunPublic):
    summary: dict[str, Any] = Field(description="The full check result (detectors' document + window).")
    features: list[FeatureResultPublic]


class RunPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[RunPublic]


class HistoryPoint(BaseModel):
    run_id: int
    window_start: datetime
    window_end: datetime
    model_version: str
    method: str
    statistic: float | None
    p_val: float | None
    threshold: float | None
    is_drift: bool
    status: str


class FeatureHistory(BaseModel):
    feature: str
    points: list[HistoryPoint]


class EpisodePublic(BaseModel):
    id: int
    model_name: str
    kind: str
    status: str
    opened_at: datetime
    closed_at: datetime | None
    first_run_id: int
    last_run_id: int
    close_run_id: int | None

    @classmethod
    def of(cls, row: Episode) -> EpisodePublic:
        return cls.model_validate(row, from_attributes=True)


class EpisodePage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[EpisodePublic]


def _json_integer(value: Any) -> Any:
    # JSON Schema's integer: 5 and 5.0, never `true` or "5" (pydantic alone reads both as integers)
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


# `last_n` or a time range, in the published schema too (a null counts as absent, as in the validator).
_ONE_WINDOW: JsonDict = {
    "anyOf": [
        {"properties": {"last_n": {"type": "null"}}},
        {"properties": {"start": {"type": "null"}, "end": {"type": "null"}}},
    ]
}


class CheckRequest(BaseModel):
    """A window to check now: a time range (`start` / `end`, either open) or the `last_n` rows. A range
    with `start` at or after `end` holds no rows: a 409, like any window without traffic."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_WINDOW)

    kind: RunKind = "drift"
    start: Timestamp | None = None
    end: Timestamp | None = None
    last_n: Annotated[int, Field(ge=1, le=10_000_000), BeforeValidator(_json_integer)] | None = None
    # MLflow registry versions are integers; anything else would fail inside MLflow (a 500)
    model_version: str | None = Field(default=None, pattern=r"^[0-9]{1,18}$")

    @model_validator(mode="after")
    def _one_window(self) -> CheckRequest:
        if self.last_n is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either last_n or start/end, not both")
        return self

    @property
    def empty(self) -> bool:
        return self.start is not None and self.end is not None and self.start >= self.end
