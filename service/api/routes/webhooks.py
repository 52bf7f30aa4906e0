"""Admin API of alert webhooks. The secret is write-only: stored for signing, never returned or logged,
except once in the creation response when the server generated it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import SecretStr
from sqlmodel import Session

from service.alerts import store
from service.alerts.dispatcher import policy_of
from service.alerts.signing import new_secret
from service.alerts.targets import TargetRefused, parse_url, resolve_checked
from service.api.deps import AdminDep, RuntimeDep, SessionDep
from service.api.routes._responses import errors
from service.api.schemas.webhooks import (
    MIN_SECRET,
    AttemptPublic,
    DeliveryPublic,
    TestQueued,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhookUpdate,
)
from service.config import Settings
from service.db.tables import Delivery, Event, Webhook

router = APIRouter(
    prefix="/v1/webhooks",
    tags=["webhooks"],
    dependencies=[AdminDep],
    responses=errors(400, 401, 403, 404, 409, 413, 422),
)

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _public(hook: Webhook) -> dict[str, Any]:
    assert hook.id is not None
    return {
        "id": hook.id,
        "url": hook.url,
        "event_types": orjson.loads(hook.event_types),
        "format": hook.format,
        "enabled": hook.enabled,
        "models": orjson.loads(hook.models),
        "created_at": hook.created_at,
        "updated_at": hook.updated_at,
    }


def _invalid(field: str, msg: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": msg}])


async def _check_target(url: str, settings: Settings) -> None:
    """Refuse forbidden hosts now; a host that does not resolve yet is accepted (each attempt re-checks)."""
    parts = parse_url(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        await resolve_checked(
            parts.hostname or "", port, policy_of(settings), timeout=settings.webhook_timeout_seconds
        )
    except TargetRefused as exc:
        raise _invalid("url", f"target refused: {exc}") from None
    except (OSError, TimeoutError):
        pass


def _secret(value: SecretStr | None) -> str | None:
    # Checked here, not by pydantic, so a rejected secret is never echoed back in the 422 `input`.
    if value is None:
        return None
    secret = value.get_secret_value()
    if not MIN_SECRET <= len(secret) <= 500:
        raise _invalid("secret", f"secret must be {MIN_SECRET} to 500 characters")
    return secret


def _hook(session: Session, webhook_id: int) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise HTTPException(404, f"webhook {webhook_id} not found")
    return hook


@router.post("", response_model=WebhookCreated, status_code=201)
async def create(body: WebhookCreate, session: SessionDep, runtime: RuntimeDep) -> WebhookCreated:
    secret = _secret(body.secret)
    await _check_target(body.url, runtime.settings)
    generated = new_secret() if secret is None else None
    hook = await run_in_threadpool(
        store.create_webhook,
        session,
        url=body.url,
        event_types=body.event_types,
        secret=secret or generated or "",
        format=body.format,
        models=body.models,
    )
    await run_in_threadpool(session.commit)
    return WebhookCreated(**_public(hook), secret=generated)


@router.get("", response_model=list[WebhookPublic])
def list_all(session: SessionDep) -> list[WebhookPublic]:
    return [WebhookPublic(**_public(h)) for h in store.list_webhooks(session)]


@router.get("/{webhook_id}", response_model=WebhookPublic)
def get(webhook_id: Id, session: SessionDep) -> WebhookPublic:
    return WebhookPublic(**_public(_hook(session, webhook_id)))


@router.patch("/{webhook_id}", response_model=WebhookPublic)
async def update(
    webhook_id: Id, body: WebhookUpdate, session: SessionDep, runtime: RuntimeDep
) -> WebhookPublic:
    secret = _secret(body.secret)
    if body.url is not None:
        await _check_target(body.url, runtime.settings)
    hook = await run_in_threadpool(_hook, session, webhook_id)
    hook = await run_in_threadpool(
        lambda: store.update_webhook(
            session,
            hook=hook,
            url=body.url,
            event_types=body.event_types,
            secret=secret,
            format=body.format,
            enabled=body.enabled,
            models=body.models,
        )
    )
    await run_in_threadpool(session.commit)
    return WebhookPublic(**_public(hook))


@router.delete("/{webhook_id}", status_code=204)
def delete(webhook_id: Id, session: SessionDep) -> None:
    store.delete_webhook(session, hook=_hook(session, webhook_id))
    session.commit()


@router.post("/{webhook_id}/test", response_model=TestQueued, status_code=202)
def test(webhook_id: Id, session: SessionDep, runtime: RuntimeDep) -> TestQueued:
    hook = _hook(session, webhook_id)
    if not hook.enabled:
        raise HTTPException(409, f"webhook {webhook_id} is disabled; enable it first")
    delivery = store.queue_test_event(
        session, hook=hook, model_name=runtime.settings.model_name, public_url=runtime.settings.public_url
    )
    session.commit()
    assert delivery.id is not None
    return TestQueued(event_id=delivery.event_id, delivery_id=delivery.id)


def _delivery_public(log: store.DeliveryLog) -> DeliveryPublic:
    d = log.delivery
    assert d.id is not None
    return DeliveryPublic(
        id=d.id,
        event_id=d.event_id,
        event_type=log.event_type,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        attempt_log=[AttemptPublic.model_validate(a, from_attributes=True) for a in log.attempts],
    )


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryPublic])
def deliveries(
    webhook_id: Id,
    session: SessionDep,
    status: Literal["pending", "delivered", "dead"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[DeliveryPublic]:
    _hook(session, webhook_id)
    logs = store.list_deliveries(session, webhook_id=webhook_id, status=status, limit=limit, offset=offset)
    return [_delivery_public(log) for log in logs]


@router.post("/deliveries/{delivery_id}/redeliver", response_model=DeliveryPublic)
def redeliver(delivery_id: Id, session: SessionDep) -> DeliveryPublic:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise HTTPException(404, f"delivery {delivery_id} not found")
    if delivery.status == "pending":
        raise HTTPException(409, f"delivery {delivery_id} is already pending")
    delivery = store.redeliver(session, delivery=delivery)
    session.commit()
    event = session.get(Event, delivery.event_id)
    return _delivery_public(store.DeliveryLog(delivery, event.type if event else "", []))
