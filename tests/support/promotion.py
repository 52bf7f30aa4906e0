"""Helpers of the promotion-protocol tests: a crash no handler records, cheap seeded models, labeled rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient
from sqlmodel import Session, col, select

from retrain.registry import ModelVersionInfo, Registry
from retrain.synthetic import FEATURES, TARGET, generate
from service.codec import dumps
from service.config import Settings
from service.db.tables import Event, RetrainJob, utcnow
from service.retraining.submit import submit
from service.serving import store as repository


@pytest.fixture(scope="session")
def template(mlflow_server: str) -> ModelVersionInfo:
    """One demo model uploaded once; each test registers its versions 1 and 2 from it (no upload)."""
    from retrain.bootstrap import bootstrap_demo

    return bootstrap_demo(Registry(mlflow_server, experiment="promotion"), unique("template"), n_rows=600)


@pytest.fixture
def server(mlflow_server: str) -> Registry:
    """A registry on the real `mlflow server` of the session."""
    return Registry(mlflow_server, experiment="promotion")


class Crash(BaseException):
    """The process dies here: a BaseException passes every `except Exception`, so nothing records it."""


def crash_at(
    monkeypatch: pytest.MonkeyPatch,
    target: object,
    method: str,
    *,
    when: Callable[..., bool] = lambda *a, **k: True,
    after: bool = False,
    error: BaseException | None = None,
) -> None:
    """Make `target.method` raise `error` (default :class:`Crash`) on the first call matching `when`,
    before the real call or, with `after`, once it has done its work; later calls pass through."""
    real = getattr(target, method)
    fired = False

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal fired
        if fired or not when(*args, **kwargs):
            return real(*args, **kwargs)
        fired = True
        result = real(*args, **kwargs) if after else None
        raise error if error is not None else Crash(f"crash in {method}")
        return result  # pragma: no cover

    monkeypatch.setattr(target, method, wrapper)


def seed_champion(registry: Registry, template: ModelVersionInfo, name: str) -> None:
    """`name` with versions 1 and 2 of the template's model (no upload): champion 2, previous_champion 1."""
    client = MlflowClient(registry.tracking_uri, registry.tracking_uri)
    client.create_registered_model(name)
    model_id = template.source.removeprefix("models:/") if template.source.startswith("models:/") else None
    for _ in range(2):
        client.create_model_version(name, source=template.source, run_id=template.run_id, model_id=model_id)
    registry.promote(name, "1")
    registry.promote(name, "2")


def log_labeled(engine: sa.Engine, name: str, n: int, *, seed: int = 5) -> None:
    """`n` labeled predictions of `name`, one second apart, ending now."""
    df = generate(n, seed=seed)
    start = utcnow() - timedelta(seconds=n)
    rows, labels = [], []
    for i, record in enumerate(df[list(FEATURES)].to_dict(orient="records")):
        pid = str(uuid.uuid4())
        rows.append({
            "id": pid, "created_at": start + timedelta(seconds=i), "model_name": name, "model_version": "2",
            "features": dumps(record), "output": "0", "probabilities": None, "latency_ms": 1.0,
            "endpoint": "predict",
        })  # fmt: skip
        labels.append((pid, int(df[TARGET].iloc[i])))
    with engine.begin() as conn:
        repository.insert_predictions(conn, rows=rows)
    with Session(engine) as session:
        repository.record_feedback(session, items=labels)
        session.commit()


def queued_job(
    engine: sa.Engine, registry: Registry, template: ModelVersionInfo, prefix: str, *, force: bool = True
) -> tuple[str, int]:
    """A new model `<prefix>-…` with champion 2 and previous_champion 1, 300 labeled rows and a manual job
    queued (forced by default: promoted whatever the gate says); its name and the job's id."""
    name = unique(prefix)
    seed_champion(registry, template, name)
    log_labeled(engine, name, 300)
    job = submit(engine, model_name=name, trigger="manual", reason=f"{prefix} test", force=force).job
    assert job.id is not None
    return name, job.id


def job_settings(url: str, name: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {"database_url": url, "model_name": name, "retrain_min_rows": 200,
                            "retrain_cooldown_seconds": 0}  # fmt: skip
    return Settings(**{**base, **overrides})


def job_row(engine: sa.Engine, job_id: int | None) -> RetrainJob:
    with Session(engine) as session:
        row = session.get(RetrainJob, job_id)
        assert row is not None
        return row


def events_of(engine: sa.Engine, name: str) -> list[Event]:
    with Session(engine) as session:
        query = select(Event).where(Event.model_name == name).order_by(col(Event.created_at), col(Event.id))
        return list(session.exec(query).all())


def aliases(registry: Registry, name: str) -> dict[str, str]:
    return {alias: info.version for info in registry.list_versions(name) for alias in info.aliases}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
