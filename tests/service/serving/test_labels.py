"""Labels derived from predict_proba equal predict exactly, ties included; others keep both calls."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import ExtraTreesClassifier, GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

from service.serving.holder import LoadedModel, predict_rows
from service.serving.labels import SUPPORTED, proba_labels
from service.serving.records import Column

COLUMNS = tuple(Column(c, "double") for c in "abcd")


def _data(n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 4))
    score = x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] + rng.normal(scale=0.7, size=600)
    edges = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])
    names = np.array(["low", "mid", "high", "top"][:n_classes], dtype=object)
    return x, names[np.searchsorted(edges, score)]


def _estimators() -> list[Any]:
    return [
        DecisionTreeClassifier(max_depth=6, random_state=0),
        ExtraTreeClassifier(max_depth=6, random_state=0),
        RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0),
        ExtraTreesClassifier(n_estimators=10, max_depth=5, random_state=0),
        LogisticRegression(max_iter=500),
        GaussianNB(),
        GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0),
    ]


def test_every_supported_estimator_is_tested() -> None:
    assert {type(e) for e in _estimators()} == set(SUPPORTED)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("estimator", _estimators(), ids=lambda e: type(e).__name__)
def test_labels_equal_predict_on_random_data(estimator: Any, n_classes: int) -> None:
    x, y = _data(n_classes)
    estimator.fit(x, y)
    derived = proba_labels(estimator)
    assert derived is not None
    test = np.random.default_rng(1).normal(scale=2.0, size=(2000, 4))
    got = derived.labels(np.asarray(estimator.predict_proba(test), dtype=float), test)
    expected = estimator.predict(test).tolist()
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]  # what the response serializes


def test_a_tied_row_gets_predict_and_only_it_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # Balanced classes and a feature that separates nothing on rows with x0 == 0: the boosted raw score
    # there is exactly 0, predict_proba is [0.5, 0.5] (argmax: class 0) but predict says `raw >= 0`: class 1.
    x = np.array([[0.0]] * 50 + [[1.0]] * 25 + [[2.0]] * 25)
    y = np.array([0, 1] * 25 + [0] * 20 + [1] * 5 + [1] * 20 + [0] * 5)
    gb = GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(x, y)
    test = np.array([[0.0], [1.0], [2.0]])
    proba = gb.predict_proba(test)
    assert proba[0, 0] == proba[0, 1] == 0.5
    assert gb.classes_[proba[0].argmax()] != gb.predict(test[:1])[0]  # the naive argmax is wrong here
    derived = proba_labels(gb)
    assert derived is not None
    asked: list[int] = []
    predict = gb.predict

    def spy(data: np.ndarray) -> Any:
        asked.append(len(data))
        return predict(data)

    monkeypatch.setattr(gb, "predict", spy)
    assert derived.labels(proba, test) == predict(test).tolist()
    assert asked == [1]  # only the tied row


@pytest.mark.parametrize("kind", [DecisionTreeClassifier, RandomForestClassifier])
def test_a_tie_in_a_tree_needs_no_second_call(kind: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # a leaf holding one row of each class: predict_proba [0.5, 0.5]; a tree's predict is the argmax of
    # that same array, so the first class is its answer too and `predict` is never asked
    x = np.array([[0.0], [0.0], [1.0], [1.0], [1.0]])
    y = np.array(["a", "b", "b", "b", "b"])
    model = kind(
        random_state=0,
        **({"n_estimators": 3, "bootstrap": False} if kind is not DecisionTreeClassifier else {}),
    )
    model.fit(x, y)
    test = np.array([[0.0], [1.0]])
    proba = model.predict_proba(test)
    assert proba[0].tolist() == [0.5, 0.5]
    expected = model.predict(test).tolist()
    derived = proba_labels(model)
    assert derived is not None
    monkeypatch.setattr(model, "predict", lambda data: pytest.fail("predict was called"))
    assert derived.labels(proba, test) == expected == ["a", "b"]


class _Subclassed(LogisticRegression):  # type: ignore[misc]  # a subclass may override predict
    pass


@pytest.mark.parametrize("estimator", [LinearDiscriminantAnalysis(), _Subclassed(max_iter=500)])
def test_an_unsupported_estimator_keeps_both_calls(estimator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _data(2)
    frame = pd.DataFrame(x, columns=list("abcd"))
    pipeline = Pipeline([("s", StandardScaler()), ("m", estimator)]).fit(frame, y)
    model = LoadedModel(
        "m", "1", pipeline, tuple(Column(c, "double") for c in frame.columns), ("high", "low")
    )
    assert model.labels is None
    calls: list[str] = []
    predict = estimator.predict

    def spy(data: Any) -> Any:
        calls.append("predict")
        return predict(data)

    monkeypatch.setattr(estimator, "predict", spy)
    rows = [{str(k): v for k, v in r.items()} for r in frame.head(5).to_dict(orient="records")]
    out = predict_rows(model, rows)
    assert calls == ["predict"]
    assert out.predictions == pipeline.predict(frame.head(5)).tolist()


def test_a_supported_pipeline_calls_predict_proba_only(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _data(2)
    frame = pd.DataFrame(x, columns=list("abcd"))
    final = LogisticRegression(max_iter=500)
    pipeline = Pipeline([("s", StandardScaler()), ("m", final)]).fit(frame, y)
    model = LoadedModel(
        "m", "1", pipeline, tuple(Column(c, "double") for c in frame.columns), ("high", "low")
    )
    assert model.labels is not None
    expected = pipeline.predict(frame.head(50)).tolist()
    monkeypatch.setattr(final, "predict", lambda data: pytest.fail("predict was called"))
    rows = [{str(k): v for k, v in r.items()} for r in frame.head(50).to_dict(orient="records")]
    out = predict_rows(model, rows)
    assert out.predictions == expected
    assert out.probabilities is not None and len(out.probabilities) == 50
