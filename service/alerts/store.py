"""Webhook and delivery writes for the admin API (the secret is stored, never read back out)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.alerts.outbox import add_event
from service.codec import dumps
from service.db.tables import Delivery, DeliveryAttempt, Event, Webhook, utcnow

TEST_EVENT_TYPE = "webhook.test"


def create_webhook(
    session: Session,
    *,
    url: str,
    event_types: Sequence[str],
    secret: str,
    format: str,
    models: Sequence[str] = (),
) -> Webhook:
    now = utcnow()
    hook = Webhook(
        url=url,
        event_types=dumps(list(event_types)),
        secret=secret,
        format=format,
        models=dumps(list(models)),
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    session.add(hook)
    session.flush()
    session.refresh(hook)
    return hook


def list_webhooks(session: Session) -> Sequence[Webhook]:
    return session.exec(select(Webhook).order_by(col(Webhook.id))).all()


def update_webhook(
    session: Session,
    *,
    hook: Webhook,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    secret: str | None = None,
    format: str | None = None,
    enabled: bool | None = None,
    models: Sequence[str] | None = None,
) -> Webhook:
    if models is not None:
        hook.models = dumps(list(models))
    if url is not None:
        hook.url = url
    if event_types is not None:
        hook.event_types = dumps(list(event_types))
    if secret is not None:
        hook.secret = secret
    if format is not None:
        hook.format = format
    if enabled is not None:
        hook.enabled = enabled
    hook.updated_at = utcnow()
    session.add(hook)
    session.flush()
    session.refresh(hook)
    return hook


def delete_webhook(session: Session, *, hook: Webhook) -> None:
    """Delete the hook with its deliveries and their attempt log (events stay: other hooks share them)."""
    ids = select(Delivery.id).where(Delivery.webhook_id == hook.id)
    session.exec(sa.delete(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_(ids)))
    session.exec(sa.delete(Delivery).where(col(Delivery.webhook_id) == hook.id))
    session.delete(hook)
    session.flush()


def queue_test_event(session: Session, *, hook: Webhook, model_name: str, public_url: str) -> Delivery:
    """A `webhook.test` event delivered to this hook only (emit() would fan out to every subscriber)."""
    assert hook.id is not None
    event = add_event(
        session, type=TEST_EVENT_TYPE, model_name=model_name, model_version=None,
        summary=f"Test delivery to webhook {hook.id} from driftloop.", data={"webhook_id": hook.id},
        links={"dashboard": public_url.rstrip("/") + "/"},
    )  # fmt: skip
    now = event.created_at
    delivery = Delivery(event_id=event.id, webhook_id=hook.id, next_attempt_at=now, created_at=now)
    session.add(delivery)
    session.flush()
    session.refresh(delivery)
    return delivery


@dataclass(frozen=True)
class DeliveryLog:
    delivery: Delivery
    event_type: str
    attempts: list[DeliveryAttempt]


def list_deliveries(
    session: Session, *, webhook_id: int, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[DeliveryLog]:
    query = (
        select(Delivery, Event.type)
        .join(Event, col(Event.id) == col(Delivery.event_id))
        .where(Delivery.webhook_id == webhook_id)
    )
    if status is not None:
        query = query.where(Delivery.status == status)
    rows = session.exec(query.order_by(col(Delivery.id).desc()).offset(offset).limit(limit)).all()
    ids = [d.id for d, _ in rows]
    attempts: dict[int, list[DeliveryAttempt]] = {i: [] for i in ids if i is not None}
    if ids:
        for attempt in session.exec(
            select(DeliveryAttempt)
            .where(col(DeliveryAttempt.delivery_id).in_(ids))
            .order_by(col(DeliveryAttempt.id))
        ).all():
            attempts[attempt.delivery_id].append(attempt)
    return [DeliveryLog(d, t, attempts[d.id]) for d, t in rows if d.id is not None]


def redeliver(session: Session, *, delivery: Delivery) -> Delivery:
    """Send a dead (or delivered) delivery again with a fresh attempt budget; the attempt log is kept."""
    now = utcnow()
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.delivered_at = None
    session.add(delivery)
    session.flush()
    session.refresh(delivery)
    return delivery
