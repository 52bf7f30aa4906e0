"""Seed a database with what the monitor would have written: logged predictions, a reference and drift runs
whose results come from the real detectors (covariate drift injected from a known window on)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import pandas as pd
from sqlmodel import Session

from detectors.check import CheckOptions, run_check
from detectors.profile import ReferenceProfile
from retrain.synthetic import FEATURES, TIMESTAMP, DriftPlan, generate
from service.db.engine import make_engine
from service.db.tables import DriftRun, Episode, FeatureResult
from service.monitor.references import store_reference
from service.serving import store

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@dataclass
class Seeded:
    run_ids: list[int] = field(default_factory=list)
    episode_id: int | None = None
    drifted: dict[int, tuple[str, ...]] = field(default_factory=dict)


def seed(
    database_url: str,
    *,
    model_name: str = "demo",
    version: str = "1",
    runs: int = 5,
    drift_from: int = 3,
    window_rows: int = 300,
    reference: bool = True,
) -> Seeded:
    """`runs` windows of `window_rows` predictions one minute apart; windows >= `drift_from` drift."""
    engine = make_engine(database_url)
    training = generate(3000, seed=0).drop(columns=[TIMESTAMP])  # store_reference cannot JSON a Timestamp
    if reference:
        profile = store_reference(
            engine, model_name=model_name, model_version=version, data=training, source="test"
        ).profile
    else:
        profile = ReferenceProfile.fit(training[list(FEATURES)], seed=0)
    plan = DriftPlan(covariate_at=drift_from * window_rows, covariate_shift=1.5)
    out = Seeded()
    with Session(engine) as session:
        for i in range(runs):
            window = generate(window_rows, seed=11, drift=plan, offset=i * window_rows)[list(FEATURES)]
            start = START + timedelta(minutes=i)
            end = _log(session, window, model_name, version, start)
            run_id, drifted = _run(session, window, profile, model_name, version, start, end, i)
            out.run_ids.append(run_id)
            out.drifted[run_id] = drifted
        breaching = [rid for rid in out.run_ids if out.drifted[rid]]
        if breaching:
            episode = Episode(
                model_name=model_name,
                kind="drift",
                status="open",
                opened_at=START + timedelta(minutes=drift_from, seconds=59),
                first_run_id=breaching[0],
                last_run_id=breaching[-1],
            )
            session.add(episode)
            session.commit()
            out.episode_id = episode.id
    engine.dispose()
    return out


def _log(session: Session, window: pd.DataFrame, name: str, version: str, start: datetime) -> datetime:
    records = window.astype(object).to_dict(orient="records")
    rows = [
        {
            "id": str(uuid.uuid4()),
            "created_at": start + timedelta(milliseconds=100 * j),
            "model_name": name,
            "model_version": version,
            "features": orjson.dumps(record).decode(),
            "output": "0",
        }
        for j, record in enumerate(records)
    ]
    store.insert_predictions(session.connection(), rows=rows)  # the one insert path: it numbers `seq`
    session.commit()
    return rows[-1]["created_at"] if rows else start


def _run(
    session: Session,
    window: pd.DataFrame,
    profile: ReferenceProfile,
    name: str,
    version: str,
    start: datetime,
    end: datetime,
    index: int,
) -> tuple[int, tuple[str, ...]]:
    result = run_check(profile, window, options=CheckOptions(multivariate=False, correction="bonferroni"))
    run = DriftRun(
        window_key=f"{name}:{version}:drift:{end.isoformat()}",
        kind="drift",
        model_name=name,
        model_version=version,
        window_start=start,
        window_end=end,
        n_rows=len(window),
        status=result.status,
        dataset_drift=result.dataset_drift,
        drift_share=result.drift_share,
        is_breach=result.dataset_drift or bool(result.drifted_features),
        summary=orjson.dumps(result.to_dict()).decode(),
        started_at=end + timedelta(seconds=1),
        finished_at=end + timedelta(seconds=2),
        duration_ms=1000.0 + index,
    )
    session.add(run)
    session.commit()
    rows = [
        FeatureResult(
            run_id=run.id or 0,
            feature=f.name,
            kind=f.kind,
            method=f.method,
            statistic=f.statistic,
            p_val=f.p_val,
            threshold=f.threshold,
            is_drift=f.is_drift,
            status=f.status,
        )
        for f in result.features
    ]
    session.add_all(rows)
    session.commit()
    return run.id or 0, result.drifted_features
