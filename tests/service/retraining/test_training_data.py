"""A poisoned prediction log (issue 14, finding 1): unusable rows are dropped and counted, the job goes on."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import sqlalchemy as sa
from sqlmodel import Session

from retrain.bootstrap import bootstrap_demo
from retrain.registry import Registry
from retrain.synthetic import FEATURES, DriftPlan, generate
from service.db.engine import make_engine
from service.db.tables import utcnow
from service.retraining import worker as jobs
from service.retraining.submit import submit
from service.retraining.training_data import DROPPED, TARGET, labeled_rows
from service.serving import store as repository
from tests.service.retraining.test_worker import NAME, log_labeled, settings_for

# What the API refuses today but an old log, another tool or a hand-written row may hold. The raw JSON is
# written as text: `1` followed by 400 zeros is valid JSON that no double can hold.
POISON = (
    '"age": 1e308',
    '"balance": -1e300',
    '"income": 1' + "0" * 400,
    '"num_products": 18446744073709551616',
)


def poison(engine: sa.Engine, *, model_name: str = NAME) -> list[str]:
    """Insert one labeled prediction per poisoned value, straight into the database."""
    good = generate(len(POISON), seed=11)[list(FEATURES)].to_dict(orient="records")
    rows, ids = [], []
    for record, bad in zip(good, POISON, strict=True):
        key = bad.split(":")[0].strip('"')
        text = orjson.dumps({k: v for k, v in record.items() if k != key}).decode()[:-1] + ", " + bad + "}"
        pid = str(uuid.uuid4())
        ids.append(pid)
        rows.append({"id": pid, "created_at": utcnow() - timedelta(seconds=1), "model_name": model_name,
                     "model_version": "1", "features": text, "output": "0", "probabilities": None,
                     "latency_ms": 1.0, "endpoint": "predict"})  # fmt: skip
    with engine.begin() as conn:
        repository.insert_predictions(conn, rows=rows)
    with Session(engine) as session:
        repository.record_feedback(session, items=[(pid, 1) for pid in ids])
        session.commit()
    return ids


def test_unusable_rows_are_dropped_and_counted(database_url: str) -> None:
    engine = make_engine(database_url)
    name = f"poisoned-{uuid.uuid4().hex[:8]}"
    poison(engine, model_name=name)
    frame = labeled_rows(engine, model_name=name, limit=100)
    assert frame.empty and frame.attrs[DROPPED] == len(POISON)


def test_a_poisoned_log_does_not_stop_retraining(sqlite_url: str, registry: Registry) -> None:
    engine = make_engine(sqlite_url)
    bootstrap_demo(registry, NAME, n_rows=2000)
    log_labeled(engine, 1500, drift=DriftPlan(concept_at=0))
    poison(engine)
    frame = labeled_rows(engine, model_name=NAME, limit=5000)
    assert len(frame) == 1500 and frame.attrs[DROPPED] == len(POISON)
    assert frame[TARGET].notna().all()
    submit(engine, model_name=NAME, trigger="manual", reason="labels show decay")
    done = jobs.run_next(engine, settings=settings_for(sqlite_url), registry=registry)
    assert done is not None and done.status == "succeeded", done.error
    details = orjson.loads(done.details)
    assert details["labeled_rows"] == 1500  # the poisoned rows were left out, not trained on
