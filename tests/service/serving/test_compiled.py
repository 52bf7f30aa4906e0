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
from service.serving.compiled import CompiledColumns
from service.serving.dense import DenseRows
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


def _rows(n: int, seed: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = generate(n, seed=seed)[list(FEATURES)].to_dict(orient="records")
    return rows


def _expected(model: LoadedModel, rows: list[dict[str, object]]) -> list[object]:
    return list(model.estimator.predict(pd.DataFrame.from_records(rows, columns=list(FEATURES))).tolist())


@pytest.mark.parametrize("kind", PIPELINES)
def test_the_demo_pipelines_get_the_one_array_path(kind: str) -> None:
    estimator, target = _pipeline(kind)
    model = _model(estimator, _data(), target)
    assert isinstance(model.compiled, DenseRows)


def test_a_sparse_output_keeps_the_block_path_and_its_answers() -> None:
    ct = ColumnTransformer(
        [
            ("n", StandardScaler(), list(NUMERIC_FEATURES)),
            ("c", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
        ],
        sparse_threshold=1.0,  # always sparse
    )
    model = _model(Pipeline([("pre", ct), ("lr", LogisticRegression(max_iter=500))]), _data(), TARGET)
    assert isinstance(model.compiled, CompiledColumns)
    rows = _rows(200, 4)
    assert predict_rows(model, rows).predictions == _expected(model, rows)


def test_an_integer_only_output_keeps_the_block_path() -> None:
    ct = ColumnTransformer([("n", "passthrough", ["num_products"])])  # int64 out of scikit-learn
    model = _model(Pipeline([("pre", ct), ("lr", LogisticRegression(max_iter=500))]), _data(), TARGET)
    assert isinstance(model.compiled, CompiledColumns)
    rows = _rows(50, 4)
    assert predict_rows(model, rows).predictions == _expected(model, rows)


def test_an_ordinal_unknown_gets_the_encoded_value_and_scikit_learns_answer() -> None:
    estimator, target = _pipeline("tree")  # OrdinalEncoder(unknown_value=-1) into a tree
    model = _model(estimator, _data(), target)
    rows = [{**r, "plan": "never seen"} if i % 3 == 0 else r for i, r in enumerate(_rows(120, 8))]
    assert isinstance(model.compiled, DenseRows)
    out = model.compiled.transform(rows)
    transformer = estimator.steps[0][1]
    expected = transformer.transform(pd.DataFrame.from_records(rows, columns=list(FEATURES)))
    assert out is not None and out.dtype == expected.dtype and np.array_equal(out, expected)
    assert predict_rows(model, rows).predictions == _expected(model, rows)


def test_a_null_in_a_nullable_column_goes_to_scikit_learn() -> None:
    columns = tuple(Column(c.name, c.type, required=c.name != "income") for c in COLUMNS)
    estimator, target = _pipeline("logistic")
    data = _data()
    estimator.fit(data[list(FEATURES)], data[target])
    model = LoadedModel("m", "1", estimator, columns, tuple(estimator.classes_.tolist()))
    assert isinstance(model.compiled, DenseRows)
    rows = _rows(4, 9)
    assert model.compiled.transform(rows) is not None
    assert model.compiled.transform([*rows[:3], {**rows[3], "income": None}]) is None
