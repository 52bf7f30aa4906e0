"""Three watched models in one database, written by the real monitor: what the N-model dashboard shows.

- `a` (the default): v1, 2601 rows, the 400 rows 1000..1399 labeled; two drift blocks of 1000 checked
  (the last one has 400 labeled rows), two performance windows of 200; 601 rows toward the next block.
- `b`: v2, 1200 drifted rows, one drift block checked, an open drift episode, one promoted retrain job.
- `c`: no champion loaded, no traffic, automation paused by a rollback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import orjson
import sqlalchemy as sa
from sklearn.pipeline import Pipeline
from sqlmodel import Session, select

from retrain.synthetic import DriftPlan
from service.db.engine import make_engine
from service.db.tables import Episode, RetrainJob, utcnow
from service.monitor import automation
from service.monitor.runner import Monitor
from tests.support.models import FakeRegistries
from tests.support.monitor import add_reference, log_traffic, settings


@dataclass(frozen=True)
class Fleet:
    a: str
    b: str
    c: str
    episode_id: int
    job_id: int

    @property
    def names(self) -> tuple[str, str, str]:
        return (self.a, self.b, self.c)

    def registries(self, estimator: Pipeline) -> FakeRegistries:
        return FakeRegistries(
            {self.a: ({"1": estimator}, "1"), self.b: ({"2": estimator}, "2"), self.c: ({}, None)}
        )


def seed_fleet(url: str, estimator: Pipeline, a: str, b: str, c: str) -> Fleet:
    engine = make_engine(url)
    add_reference(engine, a, "1", n_rows=2000)
    log_traffic(engine, estimator, n_rows=1000, offset=0, model=a)
    log_traffic(engine, estimator, n_rows=400, offset=1000, model=a, labeled=True)
    log_traffic(engine, estimator, n_rows=1201, offset=1400, model=a)
    monitor_a = Monitor(settings(url, a, performance_window_rows=200), engine, champion_version=lambda _: "1")
    assert len(monitor_a.run_due("drift")) == 2 and len(monitor_a.run_due("performance")) == 2

    add_reference(engine, b, "2", n_rows=2000)
    log_traffic(engine, estimator, n_rows=1200, offset=0, model=b, version="2",
                drift=DriftPlan(covariate_at=0, covariate_shift=2.0))  # fmt: skip
    (run,) = Monitor(settings(url, b), engine, champion_version=lambda _: "2").run_due("drift")
    assert run.id is not None and run.status == "drift"
    now = utcnow()
    with Session(engine) as session, session.begin():
        episode = session.exec(
            select(Episode).where(Episode.model_name == b, Episode.status == "open")
        ).first()
        if episode is None:  # one window did not settle it: the second breach of K of M would have
            episode = Episode(model_name=b, kind="drift", status="open", opened_at=now,
                              first_run_id=run.id, last_run_id=run.id)  # fmt: skip
            session.add(episode)
        details = {"metric": "accuracy", "champion_score": 0.71, "challenger_score": 0.84}
        job = RetrainJob(model_name=b, status="succeeded", trigger="episode", champion_version="1",
                         result_version="2", details=orjson.dumps(details).decode(),
                         created_at=now - timedelta(minutes=10),
                         finished_at=now - timedelta(minutes=4))  # fmt: skip
        session.add(job)
        automation.set_state(session, c, "paused", reason="rolled back from version 4 to 3", by="person")
        session.flush()
        assert episode.id is not None and job.id is not None
        fleet = Fleet(a, b, c, episode.id, job.id)
    engine.dispose()
    return fleet


def latest_run(url: str, model: str, kind: str) -> sa.Row[tuple[int, int, str]]:
    """(id, n_rows, status) of the model's newest run of `kind`, read straight from the table."""
    engine = make_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT id, n_rows, status FROM drift_runs WHERE model_name = :m AND kind = :k "
                    "ORDER BY id DESC LIMIT 1"), {"m": model, "k": kind}
        ).one()  # fmt: skip
    engine.dispose()
    return row
