"""The validation-free final step gives scikit-learn's exact output, and steps aside where it cannot."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier

from service.serving import final as final_module
from service.serving.final import native_final


def _data(n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 5))
    score = x[:, 0] - 2 * x[:, 1] + x[:, 2] * x[:, 3] + rng.normal(scale=0.5, size=500)
    edges = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])
    return x, np.searchsorted(edges, score), score


CLASSIFIERS = [
    LogisticRegression(max_iter=500),
    DecisionTreeClassifier(max_depth=5, random_state=0),
    ExtraTreeClassifier(max_depth=5, random_state=0),
    GradientBoostingClassifier(n_estimators=15, max_depth=2, random_state=0),
    GaussianNB(),
]
REGRESSORS = [Ridge(alpha=0.5), LinearRegression(), DecisionTreeRegressor(max_depth=5, random_state=0)]


def _batches() -> list[np.ndarray]:
    test = np.random.default_rng(4).normal(scale=2.0, size=(300, 5))
    test[::3, 4] = 1.0  # one-hot-like whole numbers
    return [test, test[:1].copy(), test[7:10].copy()]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=lambda e: type(e).__name__)
def test_predict_proba_is_scikit_learns(estimator: Any, n_classes: int) -> None:
    x, y, _ = _data(n_classes)
    estimator.fit(x, y)
    native = native_final(estimator, "predict_proba")
    assert native is not None
    for batch in _batches():
        assert native.takes(batch)
        got, expected = native.call(batch), estimator.predict_proba(batch)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert np.array_equal(got, expected)


@pytest.mark.parametrize("estimator", REGRESSORS, ids=lambda e: type(e).__name__)
def test_a_regressors_predict_is_scikit_learns(estimator: Any) -> None:
    x, _, score = _data(2)
    estimator.fit(x, score)
    native = native_final(estimator, "predict")
    assert native is not None
    for batch in _batches():
        got, expected = native.call(batch), estimator.predict(batch)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_input_it_cannot_take_as_is_goes_to_scikit_learn() -> None:
    x, y, _ = _data(2)
    native = native_final(LogisticRegression(max_iter=500).fit(x, y), "predict_proba")
    assert native is not None
    good = x[:4].copy()
    with_nan = good.copy()
    with_nan[1, 2] = np.nan
    assert native.takes(good)
    for bad in (pd.DataFrame(good), with_nan, good.astype(np.float32), good[:, :4].copy(), good.T.copy().T):
        assert not native.takes(bad)


class _Subclassed(LogisticRegression):  # type: ignore[misc]  # a subclass may compute something else
    pass


@pytest.mark.parametrize(
    ("estimator", "method"),
    [
        (LinearDiscriminantAnalysis(), "predict_proba"),
        (_Subclassed(max_iter=500), "predict_proba"),
        (LogisticRegression(max_iter=500), "predict"),  # a classifier's labels come from labels.py
    ],
    ids=["unsupported", "subclass", "classifier predict"],
)
def test_other_estimators_keep_scikit_learns_path(estimator: Any, method: str) -> None:
    x, y, _ = _data(2)
    assert native_final(estimator.fit(x, y), method) is None


def test_a_probe_mismatch_keeps_scikit_learns_path(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y, _ = _data(2)
    estimator = LogisticRegression(max_iter=500).fit(x, y)
    assert native_final(estimator, "predict_proba") is not None
    off = final_module._logistic
    monkeypatch.setattr(final_module, "_logistic", lambda est: lambda d: off(est)(d) * (1 + 1e-12))
    assert native_final(estimator, "predict_proba") is None
