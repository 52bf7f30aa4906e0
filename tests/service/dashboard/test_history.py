"""A model's version and retrain history from the database, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from sqlmodel import Session

from service.alerts.outbox import add_event
from service.dashboard.history import (
    model_href,
    render_retrains,
    render_versions,
    retrain_history,
    version_history,
)
from service.dashboard.traffic import daily_rollups
from service.db.engine import make_engine
from service.db.tables import RetrainJob
from service.lifecycle.rollups import run_rollups
from tests.support.monitor import add_reference, unique_model
from tests.support.prediction_log import daily_rows, insert

T = datetime(2026, 2, 1, 9, tzinfo=UTC)


def _job(model: str, status: str, i: int, **details: object) -> RetrainJob:
    return RetrainJob(model_name=model, status=status, trigger="episode", champion_version="1",
                      result_version=str(i + 1), details=orjson.dumps(details).decode(),
                      created_at=T + timedelta(hours=i), finished_at=T + timedelta(hours=i, minutes=5),
                      error="boom" if status == "failed" else None)  # fmt: skip


def test_retrains_newest_first_with_the_gate_and_promotion(database_url: str) -> None:
    model, other = unique_model(), unique_model()
    engine = make_engine(database_url)
    gate = {"metric": "accuracy", "champion_score": 0.81, "challenger_score": 0.86}
    with Session(engine) as session, session.begin():
        session.add(_job(model, "succeeded", 0, **gate))
        session.add(_job(model, "rejected", 1, metric="accuracy", champion_score=0.81, challenger_score=0.8))
        session.add(_job(model, "failed", 2))
        session.add(_job(other, "succeeded", 3, **gate))  # another model's job
    jobs = retrain_history(engine, model_name=model)
    assert [j["status"] for j in jobs] == ["failed", "rejected", "succeeded"]
    assert [j["gate"] for j in jobs] == [None, "failed", "passed"]
    assert [j["promoted"] for j in jobs] == [False, False, True]
    assert jobs[2]["challenger_score"] == 0.86 and jobs[2]["result_version"] == "1"
    assert len(retrain_history(engine, model_name=model, limit=2)) == 2
    html = render_retrains(jobs)
    assert html.count('class="retrain"') == 3 and "passed accuracy 0.8600 vs 0.8100" in html
    assert 'data-status="failed"' in html and "boom" in html
    assert "No retrain yet" in render_retrains(retrain_history(engine, model_name=unique_model()))


def test_versions_with_when_each_became_champion_and_its_traffic(database_url: str) -> None:
    model = unique_model()
    engine = make_engine(database_url)
    add_reference(engine, model, "1", n_rows=300)
    add_reference(engine, model, "2", n_rows=300)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    insert(engine, daily_rows(model, day, 1, 30, version="1") + daily_rows(model, day, 2, 20, version="2"))
    run_rollups(engine, models=[model])
    with Session(engine) as session, session.begin():
        add_event(session, type="model.promoted", model_name=model, model_version="2", summary="promoted")
    with Session(engine) as session, session.begin():
        add_event(session, type="model.rolled_back", model_name=model, model_version="1", summary="back")
    versions = version_history(
        engine, model_name=model, champion="1", traffic=daily_rollups(engine, model_name=model)
    )
    assert [v["version"] for v in versions] == ["2", "1"]
    two, one = versions
    assert one["champion"] and not two["champion"]
    assert (one["became_champion"], two["became_champion"]) == ("rolled back to", "promoted")
    assert (one["predictions"], two["predictions"]) == (30, 40)
    html = render_versions(versions)
    assert 'data-version="1"' in html and "<strong>champion</strong>" in html and "was: promoted" in html
    # a champion served without a stored reference is still listed, first
    served = version_history(engine, model_name=model, champion="3", traffic=[])
    assert served[0]["version"] == "3" and served[0]["champion"] and served[0]["registered_at"] is None


def test_model_links_escape_the_name() -> None:
    assert model_href("churn model?v=2") == "/dashboard/models/churn%20model%3Fv%3D2"
