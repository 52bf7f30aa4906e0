"""Deliver the outbox: claim due deliveries, POST them concurrently, record every attempt, back off.

A claim moves `next_attempt_at` past the attempt's deadline with a compare-and-set on its old value, so two
dispatchers never send the same attempt; a dispatcher that dies mid-send loses only its lease, and the
delivery is retried once the lease runs out (receivers dedupe by event id).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import orjson
import sqlalchemy as sa

from service.alerts.signing import signed_headers
from service.alerts.slack import slack_text
from service.alerts.targets import Policy, TargetRefused, own_endpoints, parse_url, resolve_checked
from service.config import Settings
from service.db.tables import Delivery, DeliveryAttempt, Event, Webhook, utcnow

log = logging.getLogger("driftloop.alerts")

_D = Delivery.__table__  # type: ignore[attr-defined]
_A = DeliveryAttempt.__table__  # type: ignore[attr-defined]
_E = Event.__table__  # type: ignore[attr-defined]
_W = Webhook.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    lease_until: datetime
    attempts: int
    event_id: str
    event_type: str
    payload: str
    url: str
    secret: str
    format: str


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: float
    permanent: bool = False  # a refused target is not retried

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def policy_of(settings: Settings) -> Policy:
    own = own_endpoints(settings.public_url, settings.host, settings.port)
    return Policy(tuple(settings.webhook_allowed_hosts), settings.webhook_allow_private, own)


def lease_seconds(settings: Settings) -> float:
    return settings.webhook_timeout_seconds * 2 + 1.0


def claim_due(engine: sa.Engine, *, settings: Settings, limit: int) -> list[Claimed]:
    """Atomically take up to `limit` due deliveries of enabled hooks (compare-and-set on next_attempt_at)."""
    now = utcnow()
    lease_until = now + timedelta(seconds=lease_seconds(settings))
    due = (
        sa.select(_D.c.id, _D.c.next_attempt_at)
        .join(_W, _W.c.id == _D.c.webhook_id)
        .where(_D.c.status == "pending", _D.c.next_attempt_at <= now, _W.c.enabled.is_(True))
        .order_by(_D.c.next_attempt_at)
        .limit(limit)
    )
    with engine.begin() as conn:
        ids = []
        for row in conn.execute(due).all():
            taken = conn.execute(
                sa.update(_D)
                .where(_D.c.id == row.id, _D.c.status == "pending")
                .where(_D.c.next_attempt_at == row.next_attempt_at)
                .values(next_attempt_at=lease_until)
            ).rowcount
            if taken == 1:
                ids.append(row.id)
        if not ids:
            return []
        details = conn.execute(
            sa.select(
                _D.c.id,
                _D.c.attempts,
                _E.c.id.label("event_id"),
                _E.c.type,
                _E.c.payload,
                _W.c.url,
                _W.c.secret,
                _W.c.format,
            )  # fmt: skip
            .join(_E, _E.c.id == _D.c.event_id)
            .join(_W, _W.c.id == _D.c.webhook_id)
            .where(_D.c.id.in_(ids))
        ).all()
    return [
        Claimed(r.id, lease_until, r.attempts, r.event_id, r.type, r.payload, r.url, r.secret, r.format)
        for r in details
    ]


def render(claimed: Claimed, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """The body (the event JSON, or Slack's {"text": ...}) and its signed headers."""
    if claimed.format == "slack":
        body = orjson.dumps({"text": slack_text(orjson.loads(claimed.payload))})
    else:
        body = claimed.payload.encode()
    headers = signed_headers(
        secret=claimed.secret,
        timestamp=timestamp,
        body=body,
        event_id=claimed.event_id,
        event_type=claimed.event_type,
    )
    return body, headers


def _pinned(url: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[str, str]:
    """(URL to the checked address, Host header): connect where we checked, not where DNS says now."""
    parts = parse_url(url)
    port = f":{parts.port}" if parts.port else ""
    ip = f"[{address}]" if address.version == 6 else str(address)
    host = parts.hostname or ""
    host_header = (f"[{host}]" if ":" in host else host) + port
    return parts._replace(netloc=ip + port).geturl(), host_header


async def attempt(client: httpx.AsyncClient, claimed: Claimed, settings: Settings) -> Outcome:
    """One POST; DNS, connect and response together bounded by webhook_timeout_seconds."""
    started = time.perf_counter()
    timeout = settings.webhook_timeout_seconds

    def done(status: int | None, error: str | None, permanent: bool = False) -> Outcome:
        return Outcome(status, error, (time.perf_counter() - started) * 1000, permanent)

    try:
        async with asyncio.timeout(timeout):
            parts = parse_url(claimed.url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = await resolve_checked(host, port, policy_of(settings), timeout=timeout)
            target, host_header = _pinned(claimed.url, address)
            body, headers = render(claimed, int(time.time()))
            headers["Host"] = host_header
            extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
            request = client.build_request(
                "POST", target, content=body, headers=headers, extensions=extensions
            )
            response = await client.send(request, stream=True)  # the body is never read: status is enough
            await response.aclose()
    except TargetRefused as exc:
        return done(None, f"target refused: {exc}", permanent=True)
    except TimeoutError:
        return done(None, f"timed out after {timeout:g} s")
    except (httpx.HTTPError, OSError) as exc:
        return done(None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return done(response.status_code, None)
    return done(response.status_code, f"HTTP {response.status_code}")


def backoff(settings: Settings, attempts: int) -> float:
    """Exponential from webhook_backoff_seconds, capped, with equal jitter (half fixed, half random)."""
    delay: float = settings.webhook_backoff_seconds * 2.0 ** (attempts - 1)
    delay = min(delay, settings.webhook_backoff_max_seconds)
    return delay / 2 + random.uniform(0, delay / 2)


def record(engine: sa.Engine, claimed: Claimed, outcome: Outcome, settings: Settings) -> str:
    """Log the attempt and move the delivery on; returns its new status."""
    now = utcnow()
    attempts = claimed.attempts + 1
    values: dict[str, object] = {
        "attempts": attempts,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
    }
    if outcome.ok:
        values |= {"status": "delivered", "delivered_at": now, "next_attempt_at": now}
    elif outcome.permanent or attempts >= settings.webhook_max_attempts:
        values |= {"status": "dead", "next_attempt_at": now}
    else:
        values["next_attempt_at"] = now + timedelta(seconds=backoff(settings, attempts))
    with engine.begin() as conn:
        moved = conn.execute(
            sa.update(_D)
            .where(_D.c.id == claimed.delivery_id, _D.c.status == "pending")
            .where(_D.c.next_attempt_at == claimed.lease_until)
            .values(**values)
        ).rowcount
        # The lease can be gone (hook deleted, delivery redelivered): still log the attempt if the row exists.
        if moved or conn.execute(sa.select(_D.c.id).where(_D.c.id == claimed.delivery_id)).first():
            conn.execute(
                sa.insert(_A).values(
                    delivery_id=claimed.delivery_id,
                    attempted_at=now,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
    return str(values.get("status", "pending")) if moved else "lost"


def make_client() -> httpx.AsyncClient:
    # No redirects (a 302 to a metadata address would bypass the target check), no proxies from the
    # environment (they would bypass the address pinning), no pooled connections (SNI differs per host).
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def deliver(client: httpx.AsyncClient, engine: sa.Engine, claimed: Claimed, settings: Settings) -> str:
    outcome = await attempt(client, claimed, settings)
    status = await asyncio.to_thread(record, engine, claimed, outcome, settings)
    if not outcome.ok:
        log.info(
            "webhook delivery %s (event %s) attempt %d: %s -> %s",
            claimed.delivery_id, claimed.event_id, claimed.attempts + 1, outcome.error, status,
        )  # fmt: skip
    return status
