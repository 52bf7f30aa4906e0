"""Helpers of the label-free estimation tests: covariate-shifted traffic with P(y|x) unchanged, a model
that ignores a feature, and a registry stand-in that offers a model and its labeled holdout."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from retrain.synthetic import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, TARGET, generate
from service.codec import dumps
from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import Feedback
from service.monitor import Monitor
from service.serving import store as repository
from tests.support.monitor import MODEL, T0, add_reference, settings


class EstimatorSource:
    """What the monitor asks the registry for: no reference artifact (it is stored), the model, and its
    holdout."""

    def __init__(self, model: Any, holdout: pd.DataFrame | None) -> None:
        self.model, self.holdout, self.loads = model, holdout, 0

    def load_reference(self, name: str, version: str) -> pd.DataFrame | None:
        return None

    def load_estimator(self, name: str, version: str) -> Any:
        self.loads += 1
        return self.model

    def load_holdout(self, name: str, version: str) -> pd.DataFrame | None:
        return self.holdout


def boundary_rows(model: Any, n_rows: int, *, seed: int, width: float = 0.12) -> pd.DataFrame:
    """Generated rows (with their targets) whose predicted probability is within `width` of 0.5: a
    covariate shift into the region where the model is least sure; P(y|x) is the generator's, unchanged."""
    pool = generate(n_rows * 12, seed=seed)
    p = model.predict_proba(pool[list(FEATURES)])[:, 1]
    near = pool.loc[np.abs(p - 0.5) < width]
    assert len(near) >= n_rows, f"only {len(near)} rows near the boundary"
    return near.head(n_rows).reset_index(drop=True)


def ignoring(feature: str, n_rows: int = 3000, seed: int = 0) -> Pipeline:
    """The demo pipeline without `feature` among its inputs (the column is dropped)."""
    df = generate(n_rows, seed=seed)
    numeric = [f for f in NUMERIC_FEATURES if f != feature]
    categorical = [f for f in CATEGORICAL_FEATURES if f != feature]
    prep = ColumnTransformer(
        [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)]
    )
    model = Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=500))])
    return model.fit(df[list(FEATURES)], df[TARGET])


def log_rows(
    engine: sa.Engine,
    model: Any,
    df: pd.DataFrame,
    *,
    offset: int,
    name: str = MODEL,
    version: str = "1",
    labeled: bool = False,
) -> None:
    """Score `df`'s feature columns with `model` and log them (one per second from `offset`); with
    `labeled` their targets arrive as feedback half a second later."""
    features = df[list(FEATURES)]
    preds, proba = model.predict(features), model.predict_proba(features)
    classes = [str(c) for c in model.classes_]
    records = features.astype(object).to_dict(orient="records")
    rows = [
        {
            "id": str(uuid.uuid4()),
            "created_at": T0 + timedelta(seconds=offset + i),
            "model_name": name,
            "model_version": version,
            "features": dumps(records[i]),
            "output": dumps(preds[i].item()),
            "probabilities": dumps(dict(zip(classes, proba[i].tolist(), strict=True))),
            "latency_ms": 1.0,
            "endpoint": "predict",
        }  # fmt: skip
        for i in range(len(df))
    ]
    with engine.begin() as conn:
        repository.insert_predictions(conn, rows=rows)
        if labeled:
            labels = df[TARGET].tolist()
            feedback = [
                {
                    "prediction_id": r["id"],
                    "label": dumps(labels[i]),
                    "received_at": r["created_at"] + timedelta(milliseconds=500),
                }  # fmt: skip
                for i, r in enumerate(rows)
            ]
            conn.execute(sa.insert(Feedback.__table__), feedback)  # type: ignore[attr-defined]


def seed_estimation(url: str, model: Any, *, name: str = MODEL, window: int = 500) -> Settings:
    """What the monitor stores for a model whose traffic moves near its decision boundary: two clean and
    three shifted labeled windows, each checked for drift (with its estimate) and realized performance."""
    engine = make_engine(url)
    add_reference(engine, name)
    s = settings(url, name, window_rows=window, performance_window_rows=window)
    monitor = Monitor(
        s, engine, champion_version=lambda _: "1", references=EstimatorSource(model, generate(2000, seed=5))
    )
    clean, shifted = generate(window * 2, seed=11), boundary_rows(model, window * 3, seed=12)
    blocks = [clean[:window], clean[window:], *(shifted[i * window : (i + 1) * window] for i in range(3))]
    for i, block in enumerate(blocks):
        log_rows(engine, model, block, offset=i * window, name=name, labeled=True)
        monitor.run_due("drift")
        monitor.run_due("performance")
    engine.dispose()
    return s
