from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from retrain.task import default_metric, infer_task, validate_metric


def _frame(n: int = 300) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"amount": rng.normal(size=n), "city": rng.choice(["a", "b", "c"], n)})
    return X, pd.Series((X["amount"] + (X["city"] == "a") > 0.5).astype(int), name="defaulted")


def test_classifier_pipeline_with_categorical_columns() -> None:
    X, y = _frame()
    prep = ColumnTransformer(
        [("num", StandardScaler(), ["amount"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])]
    )
    model = Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(X, y)
    found = infer_task(model)
    assert (found.task, found.source, found.is_fallback) == ("classification", "estimator", False)
    assert default_metric(found.task) == "accuracy"


def test_regressor_with_integer_valued_targets_is_regression() -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    assert (y == y.round()).all()  # targets like 151.0: label values alone look like classes
    found = infer_task(GradientBoostingRegressor(n_estimators=20).fit(X, y))
    assert found.task == "regression" and found.estimator_type == "GradientBoostingRegressor"
    pipeline = Pipeline([("scale", StandardScaler()), ("ridge", Ridge())]).fit(X, y)
    assert infer_task(pipeline).task == "regression"
    assert validate_metric("", "regression") == "rmse"


def test_decision_tree_is_a_classifier() -> None:
    X, y = _frame()
    assert infer_task(DecisionTreeClassifier(max_depth=3).fit(X[["amount"]], y)).task == "classification"


def test_mlflow_pyfunc_wrappers(tmp_path: Any) -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    ridge = Ridge().fit(X, y)
    mlflow.sklearn.save_model(ridge, str(tmp_path / "sk"), signature=infer_signature(X, ridge.predict(X)))
    assert infer_task(mlflow.pyfunc.load_model(str(tmp_path / "sk"))).source == "estimator"

    class Opaque(mlflow.pyfunc.PythonModel):  # no scikit-learn estimator inside
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            return np.zeros(len(model_input), dtype=np.int64)

    for output, task in ((np.zeros(3, dtype=np.int64), "classification"), (np.zeros(3), "regression")):
        path = tmp_path / f"opaque-{task}"
        mlflow.pyfunc.save_model(
            str(path), python_model=Opaque(), signature=infer_signature(X.head(3), output)
        )
        found = infer_task(mlflow.pyfunc.load_model(str(path)))
        assert (found.task, found.source, found.is_fallback) == (task, "signature", True)
        assert "fallback" in found.reason


def test_unknown_model_and_bad_metric_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="cannot tell the task of object"):
        infer_task(object())
    with pytest.raises(
        ValueError, match=r"DRIFTLOOP_PERFORMANCE_METRIC='rmse'.*valid: accuracy, f1, roc_auc"
    ):
        validate_metric("rmse", "classification")
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        default_metric("ranking")
