from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import Delivery, DriftRun, Episode, Event, Webhook
from service.monitor.store import Outcome, save

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(i: int, breach: bool, *, status: str | None = None, kind: str = "drift") -> DriftRun:
    end = T0 + timedelta(minutes=i)
    return DriftRun(
        window_key=f"{kind}:m:1:rows:10:{i}",
        kind=kind,
        trigger="schedule",
        model_name="m",
        model_version="1",
        window_start=end - timedelta(minutes=1),
        window_end=end,
        n_rows=10,
        status=status or ("drift" if breach else "no_drift"),
        is_breach=breach,
        summary="{}",
        started_at=end,
        finished_at=end,
    )


def test_k_of_m_opens_once_and_closes_when_all_clear(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    settings = Settings(database_url=sqlite_url, breach_k=2, breach_m=3, public_url="http://x")
    with Session(engine) as session:  # a subscriber, so the outbox gets deliveries
        now = datetime.now(UTC)
        session.add(
            Webhook(
                url="http://r",
                event_types='["drift.detected", "drift.resolved"]',
                secret="s",
                created_at=now,
                updated_at=now,
            )
        )
        session.commit()
    pattern = [False, True, False, True, True, True, False, "insufficient_data", False, False, True]
    for i, flag in enumerate(pattern):
        r = run(i, False, status="insufficient_data") if flag == "insufficient_data" else run(i, bool(flag))
        save(engine, settings, Outcome(r, headline=f"run {i}", details={"i": i}))
    with Session(engine) as session:
        eps = session.exec(select(Episode)).all()
        evs = session.exec(select(Event).order_by(col(Event.created_at))).all()
        runs = {r.id: r for r in session.exec(select(DriftRun)).all()}
        deliveries = session.exec(select(Delivery)).all()
    # opens at run 3 (runs 1 and 3 breach among 1..3), stays open through 4..6, closes at run 9 (6 clean
    # decisive runs: 6, 8, 9 -> none breach; the insufficient one says nothing); run 10 alone opens nothing
    (ep,) = eps
    assert runs[ep.first_run_id].window_key.endswith(":1")
    assert runs[ep.last_run_id].window_key.endswith(":5")
    assert ep.close_run_id is not None and runs[ep.close_run_id].window_key.endswith(":9")
    assert [e.type for e in evs] == ["drift.detected", "drift.resolved"]
    assert len(deliveries) == 2
    payload = orjson.loads(evs[0].payload)
    assert payload["data"]["rule"]["breaching"] == 2 and payload["links"]["dashboard"] == "http://x/"
    engine.dispose()


@pytest.mark.parametrize("kind,types", [("performance", ["performance.degraded"])])
def test_performance_episodes_use_their_events(sqlite_url: str, kind: str, types: list[str]) -> None:
    engine = make_engine(sqlite_url)
    settings = Settings(database_url=sqlite_url, breach_k=1, breach_m=2)
    save(engine, settings, Outcome(run(0, True, kind=kind), headline="accuracy fell"))
    stored, created = save(engine, settings, Outcome(run(0, True, kind=kind), headline="again"))
    assert not created  # the same window again: the stored run, no second episode
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT type FROM events")).scalars().all() == types
        assert conn.execute(sa.text("SELECT count(*) FROM episodes")).scalar_one() == 1
