"""The dispatcher against real loopback receivers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from service.alerts import store
from service.alerts.outbox import emit
from service.alerts.verify import verify
from service.alerts.worker import Dispatcher
from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import Delivery, DeliveryAttempt, Event, Webhook
from tests.support.alerts_receiver import Receiver, dispatch_due, free_port

SECRET = "test-secret-0123456789"


def fast_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_timeout_seconds": 2.0,
        "webhook_backoff_seconds": 0.05,
        "webhook_max_attempts": 3,
        "webhook_dispatch_interval": 0.05,
    }
    return Settings(**(values | overrides))


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def add_hook(engine: sa.Engine) -> Iterator[Callable[..., int]]:
    """Create webhooks; delete them (and their deliveries) afterwards: the PostgreSQL DB is shared."""
    created: list[int] = []

    def factory(url: str, *, types: tuple[str, ...] = ("drift.detected",), format: str = "json") -> int:
        with Session(engine) as session:
            hook = store.create_webhook(session, url=url, event_types=types, secret=SECRET, format=format)
            session.commit()
            assert hook.id is not None
            created.append(hook.id)
            return hook.id

    yield factory
    with Session(engine) as session:
        for hook_id in created:
            hook = session.get(Webhook, hook_id)
            if hook is not None:
                store.delete_webhook(session, hook=hook)
        session.commit()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def factory(**kwargs: Any) -> Receiver:
        receiver = Receiver(**kwargs).start()
        started.append(receiver)
        return receiver

    yield factory
    for receiver in started:
        receiver.stop()


def emit_event(engine: sa.Engine, type: str = "drift.detected", **kwargs: Any) -> str:
    with Session(engine) as session:
        event = emit(
            session,
            type=type,
            model_name="demo",
            model_version="3",
            summary=kwargs.pop("summary", "2 of 4 features drifted: x1 psi 0.31 > 0.1"),
            links={"run": "http://127.0.0.1:8000/runs/1"},
            **kwargs,
        )
        session.commit()
        return event.id


def delivery_of(engine: sa.Engine, event_id: str, hook_id: int) -> tuple[Delivery, list[DeliveryAttempt]]:
    with Session(engine) as session:
        delivery = session.exec(
            select(Delivery).where(Delivery.event_id == event_id, Delivery.webhook_id == hook_id)
        ).one()
        attempts = session.exec(
            select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery.id)
        ).all()
        return delivery, list(attempts)


def pump(engine: sa.Engine, settings: Settings, until: Callable[[], bool], *, seconds: float = 10) -> None:
    """Run dispatch passes until `until()` holds (retries become due after their backoff)."""
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "condition not reached"
        asyncio.run(dispatch_due(engine, settings))
        time.sleep(0.02)


def test_signed_event_reaches_receiver_and_verifies(
    engine: sa.Engine, add_hook: Callable[..., int], receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(secret=SECRET)
    hook_id = add_hook(receiver.url, types=("drift.detected", "model.promoted"))
    event_id = emit_event(engine)
    emit_event(engine, type="retrain.started")  # not subscribed: no delivery
    asyncio.run(dispatch_due(engine, fast_settings()))

    (request,) = receiver.requests
    assert request.verified is True
    assert request.headers["x-driftloop-event-id"] == event_id
    assert request.headers["x-driftloop-event-type"] == "drift.detected"
    assert request.headers["x-driftloop-signature"].startswith("v1=")
    timestamp = request.headers["x-driftloop-timestamp"]
    assert not verify(
        "another-secret-000000", timestamp, request.body, request.headers["x-driftloop-signature"]
    )
    assert not verify(SECRET, timestamp, request.body + b" ", request.headers["x-driftloop-signature"])
    payload = orjson.loads(request.body)
    with Session(engine) as session:
        event = session.get(Event, event_id)
        assert event is not None
    assert payload == orjson.loads(event.payload)
    assert payload["model"] == {"name": "demo", "version": "3"}
    assert "x1 psi 0.31" in payload["summary"] and payload["links"]["run"].endswith("/runs/1")
    delivery, attempts = delivery_of(engine, event_id, hook_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert [a.status_code for a in attempts] == [200]


def test_receiver_down_then_up_gets_event_exactly_once(
    engine: sa.Engine, add_hook: Callable[..., int], receivers: Callable[..., Receiver]
) -> None:
    settings = fast_settings(webhook_max_attempts=5)
    port = free_port()  # nothing listens here yet
    hook_id = add_hook(f"http://127.0.0.1:{port}/hook")
    event_id = emit_event(engine)

    assert asyncio.run(dispatch_due(engine, settings)) >= 1
    delivery, attempts = delivery_of(engine, event_id, hook_id)
    assert delivery.status == "pending" and delivery.attempts == 1
    assert attempts[0].status_code is None and "Connect" in (attempts[0].error or "")

    receiver = receivers(secret=SECRET, port=port)
    pump(engine, settings, lambda: delivery_of(engine, event_id, hook_id)[0].status == "delivered")
    for _ in range(3):  # later passes must not send it again
        time.sleep(0.06)
        asyncio.run(dispatch_due(engine, settings))
    assert receiver.events == {event_id: 1}
    assert len(receiver.requests) == 1 and receiver.requests[0].verified
    delivery, attempts = delivery_of(engine, event_id, hook_id)
    assert delivery.attempts == 2 and [a.status_code for a in attempts] == [None, 200]


def test_always_failing_receiver_is_dead_lettered_then_redelivered(
    engine: sa.Engine, add_hook: Callable[..., int], receivers: Callable[..., Receiver]
) -> None:
    settings = fast_settings(webhook_max_attempts=3)
    receiver = receivers(secret=SECRET, status=500)
    hook_id = add_hook(receiver.url)
    event_id = emit_event(engine)
    pump(engine, settings, lambda: delivery_of(engine, event_id, hook_id)[0].status == "dead")
    time.sleep(0.2)
    asyncio.run(dispatch_due(engine, settings))  # dead stays dead
    delivery, attempts = delivery_of(engine, event_id, hook_id)
    assert delivery.attempts == 3 and len(receiver.requests) == 3
    assert [a.status_code for a in attempts] == [500, 500, 500]
    assert delivery.last_error == "HTTP 500"

    receiver.status = 200
    with Session(engine) as session:
        row = session.get(Delivery, delivery.id)
        assert row is not None
        store.redeliver(session, delivery=row)
        session.commit()
    pump(engine, settings, lambda: delivery_of(engine, event_id, hook_id)[0].status == "delivered")
    delivery, attempts = delivery_of(engine, event_id, hook_id)
    assert [a.status_code for a in attempts] == [500, 500, 500, 200]
    assert receiver.events == {event_id: 1}


def test_backoff_spaces_retries(
    engine: sa.Engine, add_hook: Callable[..., int], receivers: Callable[..., Receiver]
) -> None:
    settings = fast_settings(webhook_backoff_seconds=0.2, webhook_max_attempts=3)
    receiver = receivers(status=503)
    hook_id = add_hook(receiver.url)
    event_id = emit_event(engine)
    pump(engine, settings, lambda: delivery_of(engine, event_id, hook_id)[0].status == "dead")
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    # equal jitter: the n-th retry waits between half and all of 0.2 * 2**(n-1) seconds
    # (upper bounds loose: a loaded CI machine adds scheduling delay, never removes any)
    assert 0.1 <= gaps[0] < 0.2 + 0.5 and 0.2 <= gaps[1] < 0.4 + 0.5, gaps


def test_hanging_receiver_does_not_delay_another(
    engine: sa.Engine, add_hook: Callable[..., int], receivers: Callable[..., Receiver]
) -> None:
    settings = fast_settings(webhook_timeout_seconds=1.5)
    hanging = receivers(hang_seconds=30)
    healthy = receivers(secret=SECRET)
    hang_id = add_hook(hanging.url)
    add_hook(healthy.url)
    event_id = emit_event(engine)
    started = time.monotonic()
    asyncio.run(dispatch_due(engine, settings))
    elapsed = time.monotonic() - started
    assert healthy.events == {event_id: 1}
    hung_until = started + settings.webhook_timeout_seconds
    assert healthy.requests[0].at < hung_until - 0.5, "the healthy receiver waited for the hanging one"
    assert elapsed < settings.webhook_timeout_seconds + 1.0
    delivery, attempts = delivery_of(engine, event_id, hang_id)
    assert delivery.status == "pending" and attempts[0].error == "timed out after 1.5 s"


def test_two_dispatchers_never_send_the_same_attempt(
    engine: sa.Engine, add_hook: Callable[..., int], receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(secret=SECRET)
    add_hook(receiver.url)
    event_ids = [emit_event(engine) for _ in range(30)]
    settings = fast_settings(webhook_concurrency=7)
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        for _ in range(15):
            asyncio.run(dispatch_due(engine, settings))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert receiver.events == dict.fromkeys(event_ids, 1)
    assert len(receiver.requests) == 30


def test_link_local_and_private_targets_refused_at_delivery(
    engine: sa.Engine, add_hook: Callable[..., int], receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    # written straight to the table (the API would refuse them): the dispatcher must check again
    metadata_id = add_hook("http://169.254.169.254/latest/meta-data/")
    local_id = add_hook(f"http://localhost:{receiver.port}/hook")  # resolves to loopback
    event_id = emit_event(engine)
    asyncio.run(dispatch_due(engine, fast_settings(webhook_allow_private=False)))
    for hook_id in (metadata_id, local_id):
        delivery, attempts = delivery_of(engine, event_id, hook_id)
        assert delivery.status == "dead" and len(attempts) == 1
        assert (delivery.last_error or "").startswith("target refused")
    assert receiver.requests == []


def test_slack_format_posts_readable_text(
    engine: sa.Engine, add_hook: Callable[..., int], receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(secret=SECRET)
    add_hook(receiver.url, types=("model.promoted",), format="slack")
    event_id = emit_event(engine, type="model.promoted", summary="version 4 beat 3 on accuracy (0.91 > 0.88)")
    asyncio.run(dispatch_due(engine, fast_settings()))
    (request,) = receiver.requests
    text = orjson.loads(request.body)["text"]
    assert "*model.promoted* · demo v3" in text and "0.91 &gt; 0.88" in text
    assert "<http://127.0.0.1:8000/runs/1|run>" in text
    assert request.verified and request.headers["x-driftloop-event-id"] == event_id


def test_disabled_webhook_holds_its_deliveries(
    engine: sa.Engine, add_hook: Callable[..., int], receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    hook_id = add_hook(receiver.url)
    event_id = emit_event(engine)
    with Session(engine) as session:
        hook = session.get(Webhook, hook_id)
        assert hook is not None
        store.update_webhook(session, hook=hook, enabled=False)
        session.commit()
        asyncio.run(dispatch_due(engine, fast_settings()))
        assert receiver.requests == []
        store.update_webhook(session, hook=hook, enabled=True)
        session.commit()
    asyncio.run(dispatch_due(engine, fast_settings()))
    assert receiver.events == {event_id: 1}


def test_running_dispatcher_keeps_delivering_while_a_receiver_hangs(
    engine: sa.Engine, add_hook: Callable[..., int], receivers: Callable[..., Receiver]
) -> None:
    settings = fast_settings(webhook_timeout_seconds=3.0)
    hanging = receivers(hang_seconds=30)
    healthy = receivers(secret=SECRET)
    hang_id = add_hook(hanging.url)
    add_hook(healthy.url)

    async def until(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 5
        while not condition():
            assert time.monotonic() < deadline, "condition not reached"
            await asyncio.sleep(0.01)

    async def scenario() -> tuple[str, float]:
        async with Dispatcher(engine, settings):
            first = await asyncio.to_thread(emit_event, engine)
            await until(lambda: first in healthy.events and len(hanging.requests) == 1)
            sent = time.monotonic()
            second = await asyncio.to_thread(emit_event, engine)  # while the hanging attempt is in flight
            await until(lambda: second in healthy.events)
            # the hanging attempt has not ended (it is logged when it does): nobody waited for it
            assert delivery_of(engine, first, hang_id)[1] == []
            return first, time.monotonic() - sent

    started = time.monotonic()
    first, latency = asyncio.run(scenario())
    assert latency < settings.webhook_timeout_seconds
    assert time.monotonic() - started < settings.webhook_timeout_seconds + 3
    assert len(healthy.requests) == 2
    delivery, attempts = delivery_of(engine, first, hang_id)
    assert delivery.status == "pending" and [a.error for a in attempts] == ["timed out after 3 s"]


def test_scheduler_watchdog_runs_one_dispatcher_thread(
    engine: sa.Engine, add_hook: Callable[..., int], receivers: Callable[..., Receiver]
) -> None:
    from service.alerts.background import ensure_dispatcher, stop_dispatchers

    receiver = receivers(secret=SECRET)
    add_hook(receiver.url)
    settings = fast_settings()
    try:
        assert ensure_dispatcher(settings, engine) is True
        assert ensure_dispatcher(settings, engine) is False  # already running: the job is idempotent
        event_id = emit_event(engine)
        deadline = time.monotonic() + 5
        while event_id not in receiver.events:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        stop_dispatchers()
    assert receiver.events == {event_id: 1}
