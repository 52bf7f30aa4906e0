"""Request and response models of the webhook admin API, with what the published schema says of them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, StringConstraints, field_validator
from pydantic.config import JsonDict

from service.alerts.outbox import EVENT_TYPES
from service.alerts.targets import TargetRefused, parse_url
from service.model_settings import NAME_PATTERN

Format = Literal["json", "slack"]
MIN_SECRET = 16


def _url(value: str) -> str:
    try:
        parse_url(value)
    except TargetRefused as exc:
        raise ValueError(str(exc)) from None
    return value.strip()


def _event_types(value: list[str]) -> list[str]:
    if value == ["*"]:
        return list(EVENT_TYPES)
    unknown = [v for v in value if v not in EVENT_TYPES]
    if unknown:
        raise ValueError(
            f"unknown event type(s) {unknown}; valid: {', '.join(EVENT_TYPES)}, or ['*'] for all"
        )
    return list(dict.fromkeys(value))


def _models(value: list[str]) -> list[str]:
    return list(dict.fromkeys(value))


# One registered model name, the watch API's rule (service/model_settings.py).
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NAME_PATTERN)]
MODELS_DESCRIPTION = (
    "Only events of these models (their `model.name`); empty: every model. A name need not be watched yet."
)


# What the schema can say of the rules above (the target policy needs DNS: it stays a documented 422).
URL_SCHEMA: JsonDict = {"pattern": r"^\s*[hH][tT][tT][pP][sS]?://[^/?#\s]"}
EVENT_TYPE_SCHEMA: JsonDict = {"items": {"type": "string", "enum": [*EVENT_TYPES, "*"]}}
SECRET_SCHEMA: JsonDict = {"minLength": MIN_SECRET, "maxLength": 500}


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2000,
        description="http(s) receiver; a Slack incoming-webhook URL for slack. Refused (422): credentials "
        "in the URL, metadata/link-local targets (also embedded in IPv6), private ones unless allowed, and "
        "this service's own public URL or listening address.",
        json_schema_extra=URL_SCHEMA,
    )
    event_types: list[str] = Field(
        min_length=1,
        max_length=50,
        description="Known types, or ['*'] for all.",
        json_schema_extra=EVENT_TYPE_SCHEMA,
    )
    secret: SecretStr | None = Field(
        default=None,
        description=f"HMAC key, >= {MIN_SECRET} chars; generated and returned once if absent.",
        json_schema_extra=SECRET_SCHEMA,
    )
    format: Format = "json"
    models: list[ModelName] = Field(default_factory=list, max_length=100, description=MODELS_DESCRIPTION)

    _u = field_validator("url")(_url)
    _t = field_validator("event_types")(_event_types)
    _m = field_validator("models")(_models)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000, json_schema_extra=URL_SCHEMA)
    event_types: list[str] | None = Field(
        default=None, min_length=1, max_length=50, json_schema_extra=EVENT_TYPE_SCHEMA
    )
    secret: SecretStr | None = Field(
        default=None, description="Rotates the secret (never returned).", json_schema_extra=SECRET_SCHEMA
    )
    format: Format | None = None
    enabled: StrictBool | None = None
    models: list[ModelName] | None = Field(default=None, max_length=100, description=MODELS_DESCRIPTION)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value)

    @field_validator("event_types")
    @classmethod
    def _check_types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _event_types(value)

    @field_validator("models")
    @classmethod
    def _check_models(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _models(value)


class WebhookPublic(BaseModel):
    id: int
    url: str
    event_types: list[str]
    format: str
    enabled: bool
    models: list[str] = Field(description="Only events of these models; empty: every model.")
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str | None = Field(description="Only when the server generated it: shown this once.")


class AttemptPublic(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryPublic(BaseModel):
    id: int
    event_id: str
    event_type: str
    status: str = Field(description="pending | delivered | dead")
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptPublic]


class TestQueued(BaseModel):
    event_id: str
    delivery_id: int
