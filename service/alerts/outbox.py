"""The outbox: an event and its webhook deliveries are added to the caller's transaction.

Callers emit inside the same session as the state change that caused the event and commit once, so a
crash can neither lose an alert nor send one for a change that did not happen.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlmodel import Session, select

from service.codec import dumps
from service.db.tables import Delivery, Event, Webhook, utcnow

EVENT_TYPES: tuple[str, ...] = (
    "drift.detected",
    "drift.resolved",
    "performance.degraded",
    "performance.recovered",
    "performance.estimated_degraded",
    "performance.estimated_recovered",
    "retrain.started",
    "retrain.succeeded",
    "retrain.failed",
    "model.promoted",
    "model.rejected",
    "model.rolled_back",
    "automation.paused",
    "automation.resumed",
)


def add_event(
    session: Session,
    *,
    type: str,
    model_name: str,
    model_version: str | None,
    summary: str,
    data: dict[str, Any] | None = None,
    links: dict[str, str] | None = None,
) -> Event:
    """Add (and flush) one event row without deliveries; `emit` is what state changes call."""
    now = utcnow()
    event_id = str(uuid.uuid4())
    payload = {
        "id": event_id,
        "type": type,
        "time": now.isoformat(),
        "model": {"name": model_name, "version": model_version},
        "summary": summary,
        "data": data or {},
        "links": links or {},
    }
    event = Event(
        id=event_id,
        type=type,
        created_at=now,
        model_name=model_name,
        model_version=model_version,
        payload=dumps(payload),
    )
    session.add(event)
    session.flush()  # no ORM relationship orders the inserts: the event row must precede its deliveries
    return event


def emit(
    session: Session,
    *,
    type: str,
    model_name: str,
    model_version: str | None,
    summary: str,
    data: dict[str, Any] | None = None,
    links: dict[str, str] | None = None,
) -> Event:
    """Add an event and one pending delivery per enabled webhook subscribed to `type` and to the model
    (a hook naming no models takes every model's events) (no commit)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}; valid: {', '.join(EVENT_TYPES)}")
    event = add_event(
        session, type=type, model_name=model_name, model_version=model_version, summary=summary, data=data,
        links=links,
    )  # fmt: skip
    for hook in session.exec(select(Webhook).where(Webhook.enabled == True)).all():  # noqa: E712
        models = orjson.loads(hook.models)
        if type in orjson.loads(hook.event_types) and (not models or model_name in models):
            assert hook.id is not None
            session.add(
                Delivery(event_id=event.id, webhook_id=hook.id, next_attempt_at=event.created_at,
                         created_at=event.created_at)
            )  # fmt: skip
    return event
