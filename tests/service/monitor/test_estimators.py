"""Fitting and storing a version's label-free estimators (service/monitor/estimators.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from retrain.synthetic import FEATURES, TARGET, generate
from service.db.engine import make_engine
from service.monitor.estimators import estimators_for, fit_document
from service.monitor.references import load_reference
from tests.support.estimation import EstimatorSource
from tests.support.monitor import add_reference, unique_model


def test_a_classifier_gets_cbpe_and_importance(demo_estimator: Pipeline) -> None:
    holdout = generate(1000, seed=5)
    kinds = {f: "numeric" for f in FEATURES}
    doc = fit_document(
        demo_estimator, holdout, features=list(FEATURES), target=TARGET, kinds=kinds, source="t"
    )
    assert doc["task"] == "classification" and doc["notes"] == []
    assert doc["cbpe"]["method"] == "cbpe" and doc["cbpe"]["n_reference"] == 1000 and doc["dle"] is None
    shares = {f["feature"]: f["share"] for f in doc["importance"]["features"]}
    assert set(shares) == set(FEATURES) and abs(sum(shares.values()) - 1.0) < 1e-9


def test_a_numeric_regressor_gets_dle_and_a_categorical_one_says_why_not() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=800), "b": rng.normal(size=800)})
    data = X.assign(y=2 * X["a"] + rng.normal(size=800))
    model = LinearRegression().fit(X, data["y"])
    numeric = {"a": "numeric", "b": "numeric"}
    doc = fit_document(model, data, features=["a", "b"], target="y", kinds=numeric, source="t")
    assert doc["task"] == "regression" and doc["dle"]["method"] == "dle" and doc["cbpe"] is None
    assert doc["importance"]["features"][0]["feature"] == "a"
    mixed = {"a": "numeric", "b": "categorical"}
    doc = fit_document(model, data, features=["a", "b"], target="y", kinds=mixed, source="t")
    assert doc["dle"] is None
    assert doc["notes"] == ["DLE skipped: it needs numeric inputs; non-numeric features: b"]


def test_too_small_a_holdout_fits_nothing(demo_estimator: Pipeline) -> None:
    doc = fit_document(
        demo_estimator, generate(50, seed=5), features=list(FEATURES), target=TARGET, kinds={}, source="x"
    )
    assert doc["cbpe"] is None and doc["importance"] is None
    assert doc["notes"] == ["50 labeled holdout rows (x); at least 100 needed"]


def test_estimators_are_stored_once_and_refitted_when_the_reference_changes(
    database_url: str, demo_estimator: Pipeline
) -> None:
    engine: sa.Engine = make_engine(database_url)
    model = unique_model()
    add_reference(engine, model)
    source = EstimatorSource(demo_estimator, generate(500, seed=5))
    ref = load_reference(engine, model_name=model, model_version="1")
    assert ref is not None
    first = estimators_for(engine, ref, source)
    again = estimators_for(engine, ref, source)
    assert first is not None and again is not None and first.cbpe is not None
    assert source.loads == 1 and again.n_holdout == 500
    add_reference(engine, model, n_rows=3000)  # `driftloop reference set` again
    ref = load_reference(engine, model_name=model, model_version="1")
    assert ref is not None and estimators_for(engine, ref, source) is not None
    assert source.loads == 2
    assert estimators_for(engine, ref, None) is not None  # stored: no registry needed to read it
    engine.dispose()
