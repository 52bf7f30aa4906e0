"""The validation-free final step gives scikit-learn's exact output, and steps aside where it cannot."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.dummy import DummyClassifier
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
    return [test, test[:1].copy(), test[7:10].copy(), test[20:24].copy()]


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


def _must_not_run(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the validated path ran")


def _fitted_with_expected(estimator: Any, n_classes: int) -> tuple[Any, list[np.ndarray]]:
    x, y, _ = _data(n_classes)
    estimator.fit(x, y)
    return estimator, [estimator.predict_proba(batch) for batch in _batches()]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize(
    "init", [None, "zero", DummyClassifier(strategy="prior")], ids=["default", "zero", "prior"]
)
def test_boosting_with_a_constant_init_skips_the_validated_init(
    init: Any, n_classes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    est, expected = _fitted_with_expected(GradientBoostingClassifier(n_estimators=15, init=init), n_classes)
    native = native_final(est, "predict_proba")
    assert native is not None
    monkeypatch.setattr(est, "_raw_predict", _must_not_run)
    if not isinstance(est.init_, str):
        monkeypatch.setattr(est.init_, "predict_proba", _must_not_run)
    for batch, want in zip(_batches(), expected, strict=True):
        assert np.array_equal(native.call(batch), want)


def _counting(monkeypatch: pytest.MonkeyPatch, est: Any) -> list[int]:
    calls: list[int] = []
    raw_predict = est._raw_predict
    monkeypatch.setattr(est, "_raw_predict", lambda x: calls.append(len(x)) or raw_predict(x))
    return calls


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize(
    "init",
    [LogisticRegression(max_iter=500), DummyClassifier(strategy="most_frequent")],
    ids=["row-dependent", "other strategy"],
)
def test_boosting_with_another_init_keeps_the_validated_init(
    init: Any, n_classes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    est, expected = _fitted_with_expected(GradientBoostingClassifier(n_estimators=15, init=init), n_classes)
    native = native_final(est, "predict_proba")
    assert native is not None
    calls = _counting(monkeypatch, est)
    for batch, want in zip(_batches(), expected, strict=True):
        assert np.array_equal(native.call(batch), want)
    assert calls == [len(batch) for batch in _batches()]


def test_a_prior_init_that_varies_by_row_keeps_the_validated_init(monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.ensemble import _gb

    exact = _gb._init_raw_predictions
    # as if the init's link rounded differently on some rows: scikit-learn would give each row its own
    monkeypatch.setattr(
        _gb, "_init_raw_predictions", lambda *a: exact(*a) + 1e-9 * np.arange(len(a[0]))[:, None] ** 2
    )
    est, expected = _fitted_with_expected(GradientBoostingClassifier(n_estimators=15), 3)
    native = native_final(est, "predict_proba")
    assert native is not None
    calls = _counting(monkeypatch, est)
    for batch, want in zip(_batches(), expected, strict=True):
        assert np.array_equal(native.call(batch), want)
    assert len(calls) == len(_batches())


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("n_classes", [2, 3, 9])
def test_gaussian_nb_skips_scikit_learns_likelihood_and_logsumexp(
    n_classes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    est, _ = _fitted_with_expected(GaussianNB(), n_classes)
    rng = np.random.default_rng(5)
    # large inputs too: other classes' exp underflow to 0 and a square overflows (scikit-learn's NaN row)
    batches = [*_batches(), rng.normal(scale=1e3, size=(6, 5)), np.array([[1e200, 0.0, 0.0, 0.0, 0.0]])]
    expected = [est.predict_proba(batch) for batch in batches]
    native = native_final(est, "predict_proba")
    assert native is not None
    monkeypatch.setattr(est, "_joint_log_likelihood", _must_not_run)
    monkeypatch.setattr(est, "predict_log_proba", _must_not_run)
    for batch, want in zip(batches, expected, strict=True):
        got = native.call(batch)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want, equal_nan=True)
    assert np.isnan(expected[-1]).all() and (expected[-2] == 0).any()
