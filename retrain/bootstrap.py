"""Train and register the demo model on the built-in data set, so a fresh install has a champion."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from retrain.evaluate import score, split_by_time
from retrain.registry import HOLDOUT_PATH, ModelVersionInfo, Registry
from retrain.synthetic import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, TARGET, TIMESTAMP, generate

_HOLDOUT_FRACTION = 0.2


def build_demo_pipeline() -> Pipeline:
    """Scaled numeric and one-hot categorical features into a logistic regression (unfitted).

    Unknown categories at prediction time are encoded as all zeros instead of failing the request.

    Examples
    --------
    >>> df = generate(500, seed=3)
    >>> model = build_demo_pipeline().fit(df[list(FEATURES)], df[TARGET])
    >>> model.predict_proba(df[list(FEATURES)].head(2)).shape
    (2, 2)
    """
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(NUMERIC_FEATURES)),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("classifier", LogisticRegression(max_iter=1000))])


def bootstrap_demo(registry: Registry, name: str, *, n_rows: int = 5000, seed: int = 0) -> ModelVersionInfo:
    """Generate ``n_rows`` rows, train the demo pipeline, register it and make it the champion.

    The oldest 80% of rows train the model and become its reference (features, target and timestamp);
    the newest 20% give honest holdout metrics for the run and are logged at ``holdout/holdout.parquet``.
    """
    data = generate(n_rows, seed=seed)
    train, holdout = split_by_time(data, time_column=TIMESTAMP, holdout_fraction=_HOLDOUT_FRACTION)
    features = list(FEATURES)
    model = build_demo_pipeline().fit(train[features], train[TARGET])
    metrics = {f"holdout_{k}": v for k, v in score(model, holdout[features], holdout[TARGET]).items()}
    version = registry.log_and_register(
        name,
        model,
        train,
        features=features,
        target=TARGET,
        params={"n_rows": n_rows, "seed": seed, "recipe": "demo logistic regression"},
        metrics=metrics,
        tags={"trigger": "bootstrap", "validation_status": "bootstrap"},
        run_name="bootstrap",
        # the label-free estimators (CBPE, permutation importance) are calibrated on these rows
        extra_artifacts={HOLDOUT_PATH: holdout},
    )
    return registry.promote(name, version.version)
