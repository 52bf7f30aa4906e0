"""Helpers shared by tests: a demo estimator, an in-memory registry and sample records."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from retrain.synthetic import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, TARGET, generate

__all__ = ["FEATURES", "FakeRegistry", "sample_records", "train_demo_estimator"]
from service.serving.holder import LoadedModel
from service.serving.records import Column


def train_demo_estimator(n_rows: int = 3000, seed: int = 0) -> Pipeline:
    df = generate(n_rows, seed=seed)
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), list(NUMERIC_FEATURES)),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    )
    pipeline.fit(df[list(FEATURES)], df[TARGET])
    return pipeline


DEMO_COLUMNS = tuple(
    [Column(name, "double") for name in ("age", "income", "tenure_months", "balance")]
    + [Column("num_products", "long")]
    + [Column(name, "string") for name in CATEGORICAL_FEATURES]
)


class FakeRegistry:
    """In-memory stand-in for the MLflow registry: a champion alias over fitted estimators."""

    def __init__(self, name: str, estimators: dict[str, Pipeline], champion: str | None) -> None:
        self.name = name
        self.estimators = estimators
        self.champion = champion
        self.down = False

    def resolve(self, name: str) -> str | None:
        if self.down:
            raise ConnectionError("registry down")
        return self.champion

    def fetch(self, name: str, version: str) -> LoadedModel:
        est = self.estimators[version]
        return LoadedModel(name, version, est, DEMO_COLUMNS, tuple(est.classes_.tolist()))


def sample_records(n: int, seed: int = 1) -> list[dict[str, object]]:
    df = generate(n, seed=seed)[list(FEATURES)]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in df.to_dict(orient="records")
    ]
