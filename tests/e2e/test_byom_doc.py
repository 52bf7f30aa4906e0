"""docs/byom.md, followed literally: its code blocks run as written against a real `mlflow server` (only the
registered model's name is made unique, since the PostgreSQL test database is shared), its
`driftloop reference set` line runs through the CLI, then traffic scored by the registered champion is
checked by the monitor as the scheduler would: undrifted traffic reads no drift, drifted traffic drift.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import orjson
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from detectors.profile import ReferenceProfile
from retrain.registry import Registry
from service.cli.main import app
from service.codec import dumps
from service.config import get_settings
from service.db.engine import get_engine
from service.db.tables import Feedback
from service.monitor.references import get_reference
from service.monitor.runner import ManualWindow, Monitor
from service.monitor.sources import RegistryReferences, registry_champion
from service.serving import store as repository

DOC = Path(__file__).resolve().parents[2] / "docs" / "byom.md"
BLOCK = re.compile(r"```(?:python|bash)\n# byom: (?P<name>[\w-]+)\n(?P<body>.*?)```", re.S)
runner = CliRunner()


def doc_block(name: str) -> str:
    blocks = {m["name"]: m["body"] for m in BLOCK.finditer(DOC.read_text())}
    assert name in blocks, f"docs/byom.md has no block `# byom: {name}` (has {sorted(blocks)})"
    return blocks[name]


def credit_frame(n: int, seed: int, *, drifted: bool = False) -> pd.DataFrame:
    """The user's data of the classifier example: two numbers, two categories, the label, a timestamp."""
    rng = np.random.default_rng(seed)
    age = rng.normal(45, 12, n).round()
    income = rng.lognormal(10.5 + (0.6 if drifted else 0.0), 0.4, n)
    regions = ["north", "south", "east", "west"]
    region = rng.choice(regions, n, p=[0.1, 0.1, 0.2, 0.6] if drifted else [0.4, 0.3, 0.2, 0.1])
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
    score = -0.03 * (age - 45) - 0.8 * (np.log(income) - 10.5) + (region == "south") * 0.7
    defaulted = (rng.random(n) < 1 / (1 + np.exp(-score))).astype(int)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    signup = [start + timedelta(minutes=i) for i in range(n)]
    return pd.DataFrame(
        {"age": age, "income": income, "region": region, "plan": plan, "defaulted": defaulted,
         "signup_time": signup}
    )  # fmt: skip


@pytest.fixture
def workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, mlflow_server: str
) -> Iterator[Path]:
    """Section 1 of the doc: driftloop and the user's code point at the same MLflow store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("DRIFTLOOP_DATABASE_URL", database_url)
    monkeypatch.setenv("DRIFTLOOP_MIN_WINDOW_ROWS", "100")
    monkeypatch.delenv("DRIFTLOOP_PERFORMANCE_METRIC", raising=False)
    monkeypatch.delenv("DRIFTLOOP_TARGET_COLUMN", raising=False)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server)  # what the exported MLFLOW_TRACKING_URI does in a fresh shell
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield tmp_path
    mlflow.set_tracking_uri(previous)
    get_settings.cache_clear()
    get_engine.cache_clear()


def follow_doc(monkeypatch: pytest.MonkeyPatch, doc_name: str, code: str, reference: str) -> str:
    """Run the doc's Python block and its `driftloop reference set` line; returns the model name used."""
    name = f"{doc_name}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DRIFTLOOP_MODEL_NAME", name)
    get_settings.cache_clear()
    exec(compile(doc_block(code).replace(f'"{doc_name}"', f'"{name}"'), str(DOC), "exec"), {})
    (line,) = [x for x in doc_block(reference).splitlines() if x.startswith("driftloop ")]
    argv = shlex.split(line, comments=True)[1:]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    return name


def log_scored(engine: sa.Engine, registry: Registry, name: str, frame: pd.DataFrame, labels: bool) -> None:
    """Traffic as the service logs it: the champion's predictions of `frame`'s signature columns."""
    champion = registry.champion(name)
    assert champion is not None
    features = [c.name for c in registry.input_schema(name, champion.version)]
    model = registry.load_estimator(name, champion.version)
    X = frame[features]
    preds = model.predict(X)
    ids = [str(uuid.uuid4()) for _ in range(len(X))]
    now = datetime.now(UTC)
    records = X.astype(object).to_dict(orient="records")
    rows = [
        {"id": ids[i], "created_at": now + timedelta(milliseconds=i), "model_name": name,
         "model_version": champion.version, "features": dumps(records[i]), "output": dumps(preds[i].item()),
         "probabilities": None, "latency_ms": 1.0, "endpoint": "predict"}
        for i in range(len(X))
    ]  # fmt: skip
    with engine.begin() as conn:
        repository.insert_predictions(conn, rows=rows)
    if labels:
        target = "defaulted" if "defaulted" in frame.columns else "target"
        truth = frame[target].tolist()
        with engine.begin() as conn:
            conn.execute(
                sa.insert(Feedback.__table__),  # type: ignore[attr-defined]
                [{"prediction_id": ids[i], "label": dumps(truth[i]),
                  "received_at": now + timedelta(seconds=1, milliseconds=i)} for i in range(len(X))],
            )  # fmt: skip


def monitor_of(registry: Registry) -> Monitor:
    return Monitor(
        get_settings(), get_engine(), champion_version=registry_champion(registry),
        references=RegistryReferences(registry),
    )  # fmt: skip


def assert_roles(name: str, features: list[str], target: str, task: str) -> None:
    with get_engine().connect() as conn:
        from sqlmodel import Session

        with Session(bind=conn) as session:
            row = get_reference(session, model_name=name, model_version="1")
    assert row is not None
    assert (row.task, row.target) == (task, target)
    profiled = sorted(ReferenceProfile.from_json(row.profile).feature_names)
    assert profiled == sorted(features)  # the label and the timestamp are never profiled


def test_classifier_pipeline_with_categories_as_the_doc_says(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: str
) -> None:
    credit_frame(3000, seed=0).to_parquet("train.parquet", index=False)
    name = follow_doc(monkeypatch, "credit-risk", "classifier", "classifier-reference")
    assert_roles(name, ["age", "income", "region", "plan"], "defaulted", "classification")
    registry = Registry(mlflow_server)
    monitor, engine = monitor_of(registry), get_engine()

    log_scored(engine, registry, name, credit_frame(600, seed=1), labels=True)
    calm = monitor.check_now("drift", ManualWindow(last_n=600))
    assert calm.status == "no_drift", orjson.loads(calm.summary)["message"]
    perf = monitor.check_now("performance", ManualWindow(last_n=600))
    assert orjson.loads(perf.summary)["metric"] == "accuracy"

    log_scored(engine, registry, name, credit_frame(600, seed=2, drifted=True), labels=False)
    drifted = monitor.check_now("drift", ManualWindow(last_n=600))
    assert drifted.status == "drift" and drifted.is_breach, orjson.loads(drifted.summary)["message"]


def test_regressor_on_the_diabetes_data_as_the_doc_says(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: str
) -> None:
    name = follow_doc(monkeypatch, "diabetes", "regressor", "regressor-reference")
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    features = [c for c in frame.columns if c != "target"]
    assert_roles(name, features, "target", "regression")
    unseen = frame.loc[~frame.index.isin(frame.sample(frac=0.6, random_state=0).index)]
    registry = Registry(mlflow_server)
    monitor, engine = monitor_of(registry), get_engine()

    log_scored(engine, registry, name, unseen, labels=True)
    calm = monitor.check_now("drift", ManualWindow(last_n=len(unseen)))
    assert calm.status == "no_drift", orjson.loads(calm.summary)["message"]
    perf = orjson.loads(monitor.check_now("performance", ManualWindow(last_n=len(unseen))).summary)
    assert (perf["task"], perf["metric"]) == ("regression", "rmse")  # integer-valued targets, still rmse
    assert perf["metrics"]["rmse"] > 1.0  # a real error in target units, not an accuracy of 0.0

    shifted = unseen.assign(bmi=unseen["bmi"] + 0.08, s5=unseen["s5"] + 0.08)
    log_scored(engine, registry, name, shifted, labels=False)
    drifted = monitor.check_now("drift", ManualWindow(last_n=len(unseen)))
    assert drifted.status == "drift" and drifted.is_breach, orjson.loads(drifted.summary)["message"]
