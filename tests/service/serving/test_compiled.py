"""The compiled ColumnTransformer path gives scikit-learn's exact answers, and steps aside where it cannot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bench._serve_many import PIPELINES, _pipeline
from retrain.synthetic import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, TARGET, generate
from service.serving.holder import LoadedModel, predict_rows
from service.serving.records import Column

COLUMNS = tuple(
    Column(c, "long" if c == "num_products" else "string" if c in CATEGORICAL_FEATURES else "double")
    for c in FEATURES
)


def _data() -> pd.DataFrame:
    data = generate(1500, seed=11)
    data["score"] = (data["age"] / 10 + data["tenure_months"] / 12 - data["num_products"]).astype(float)
    return data


def _model(estimator: object, data: pd.DataFrame, target: str) -> LoadedModel:
    estimator.fit(data[list(FEATURES)], data[target])  # type: ignore[attr-defined]
    classes = getattr(estimator, "classes_", None)
    return LoadedModel("m", "1", estimator, COLUMNS, tuple(classes.tolist()) if classes is not None else None)


@pytest.mark.parametrize("kind", PIPELINES)
def test_same_answers_as_the_pipeline(kind: str) -> None:
    data = _data()
    estimator, target = _pipeline(kind)
    model = _model(estimator, data, target)
    assert model.compiled is not None
    rows = generate(300, seed=5)[list(FEATURES)].to_dict(orient="records")
    for r in rows[::5]:
        r["region"] = "never seen"
    out = predict_rows(model, rows)
    expected = model.estimator.predict(pd.DataFrame.from_records(rows, columns=list(FEATURES)))
    assert out.predictions == np.asarray(expected).tolist()
    if model.classes is not None:
        proba = model.estimator.predict_proba(pd.DataFrame.from_records(rows, columns=list(FEATURES)))
        keys = [str(c) for c in model.classes]
        assert out.probabilities == [dict(zip(keys, p, strict=True)) for p in proba.round(6).tolist()]


def test_an_unknown_category_where_the_encoder_raises_goes_to_scikit_learn() -> None:
    ct = ColumnTransformer(
        [("n", StandardScaler(), list(NUMERIC_FEATURES)), ("c", OneHotEncoder(), list(CATEGORICAL_FEATURES))]
    )
    model = _model(Pipeline([("pre", ct), ("lr", LogisticRegression(max_iter=500))]), _data(), TARGET)
    assert model.compiled is not None
    row = generate(1, seed=2)[list(FEATURES)].to_dict(orient="records")[0]
    assert model.compiled.transform([{**row, "region": "never seen"}]) is None
    with pytest.raises(ValueError, match="unknown categor"):
        predict_rows(model, [{**row, "region": "never seen"}])
