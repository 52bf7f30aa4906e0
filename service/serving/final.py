"""The final estimator's `predict_proba` / `predict` without scikit-learn's per-call input validation.

After the compiled ColumnTransformer (service/serving/compiled.py) the final step gets a small float64
array, and of a ~100-200 us call on a few rows almost all is `validate_data` (array namespace, dataframe
detection, finiteness, feature-count checks); the arithmetic is a few microseconds. For the estimators
below this module runs the same numpy / Cython operations scikit-learn runs after its validation. It is
used only if, at load, its output on probe rows is identical (dtype, shape, values) to scikit-learn's, and
only for an input it can take as is: a C-contiguous finite float64 array of the fitted width. Anything else
(a DataFrame, a sparse matrix, a NaN: scikit-learn's own error) goes through scikit-learn.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier
from sklearn.utils.extmath import softmax

log = logging.getLogger("driftloop.serving")

Op = Callable[[np.ndarray], np.ndarray]
PROBE_ROWS = 64


class Unsupported(ValueError):
    """This estimator has no validation-free path here."""


def _linear_scores(est: Any) -> Op:
    """LinearClassifierMixin.decision_function after its validate_data."""
    coef_t = est.coef_.T if est.coef_.ndim == 2 else est.coef_
    intercept = est.intercept_

    def scores(x: np.ndarray) -> np.ndarray:
        s: np.ndarray = x @ coef_t + intercept
        return s.reshape(-1) if s.ndim > 1 and s.shape[1] == 1 else s

    return scores


def _logistic(est: LogisticRegression) -> Op:
    scores = _linear_scores(est)
    if len(est.classes_) > 2:  # multinomial: softmax of the scores
        return lambda x: np.asarray(softmax(scores(x), copy=False))

    def proba(x: np.ndarray) -> np.ndarray:  # _predict_proba_lr of a binary model
        p = expit(scores(x))
        return np.stack([1 - p, p], axis=1)

    return proba


def _linear_regression(est: Ridge | LinearRegression) -> Op:
    """LinearModel._decision_function after its validate_data."""
    coef, intercept = est.coef_, est.intercept_
    if coef.ndim == 1:
        return lambda x: np.asarray(x @ coef + intercept)
    return lambda x: np.asarray(x @ coef.T + intercept)


def _tree(est: Any, method: str) -> Op:
    # the tree's own check_input=False path: it needs float32, which its validation would make
    call = getattr(est, method)
    return lambda x: np.asarray(call(x.astype(np.float32), check_input=False))


def _boosting(est: GradientBoostingClassifier) -> Op:
    """decision_function after its validate_data (C-ordered float32), then the loss's probabilities."""

    def proba(x: np.ndarray) -> np.ndarray:
        raw = est._raw_predict(np.ascontiguousarray(x, dtype=np.float32))
        if raw.shape[1] == 1:
            raw = raw.ravel()
        return np.asarray(est._loss.predict_proba(raw))

    return proba


def _bayes(est: GaussianNB) -> Op:
    """predict_log_proba after its validate_data, exponentiated as predict_proba does."""
    from sklearn.utils._array_api import _logsumexp  # private: an import error keeps scikit-learn's path

    def proba(x: np.ndarray) -> np.ndarray:
        jll = est._joint_log_likelihood(x)
        log_prob_x = _logsumexp(jll, axis=1, xp=np)
        return np.asarray(np.exp(jll - np.atleast_2d(log_prob_x).T))

    return proba


def _op(est: Any, method: str) -> Op:
    kind = type(est)  # exact types: a subclass may compute something else
    if method == "predict_proba":
        if kind is LogisticRegression:
            return _logistic(est)
        if kind in (DecisionTreeClassifier, ExtraTreeClassifier) and est.n_outputs_ == 1:
            return _tree(est, "predict_proba")
        if kind is GradientBoostingClassifier:
            return _boosting(est)
        if kind is GaussianNB:
            return _bayes(est)
    elif kind in (Ridge, LinearRegression):
        return _linear_regression(est)
    elif kind is DecisionTreeRegressor:
        return _tree(est, "predict")
    raise Unsupported(f"{kind.__name__}.{method} has no validation-free path")


class NativeFinal:
    """`call(x)` equals `getattr(est, method)(x)` for an input `takes(x)` accepts."""

    def __init__(self, est: Any, method: str) -> None:
        width = getattr(est, "n_features_in_", None)
        if not isinstance(width, int):
            raise Unsupported("no fitted width")
        self.width = width
        self.call = _op(est, method)

    def takes(self, x: Any) -> bool:
        return (
            type(x) is np.ndarray
            and x.dtype == np.float64
            and x.ndim == 2
            and x.shape[1] == self.width
            and x.flags.c_contiguous
            and bool(np.isfinite(x).all())
        )


def native_final(est: Any, method: str) -> NativeFinal | None:
    """The validation-free `method` of `est` if it reproduces scikit-learn's on probe rows, else None."""
    try:
        native = NativeFinal(est, method)
        probe = np.random.default_rng(0).normal(scale=3.0, size=(PROBE_ROWS, native.width))
        probe[::4] = np.round(probe[::4])  # whole numbers too: one-hot and ordinal codes look like this
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "X does not have valid feature names"
            expected = np.asarray(getattr(est, method)(probe))
            got = native.call(probe)
            # one row too: a matrix-vector product may round differently than a matrix-matrix one
            one, expected_one = native.call(probe[:1].copy()), np.asarray(getattr(est, method)(probe[:1]))
    except Unsupported as exc:
        log.info("scikit-learn's own %s: %s", method, exc)
        return None
    except Exception as exc:  # a private method moved or the probe failed: keep scikit-learn's path
        log.info("scikit-learn's own %s (probe failed: %s)", method, exc)
        return None
    same = got.dtype == expected.dtype and got.shape == expected.shape and np.array_equal(got, expected)
    if not same or one.dtype != expected_one.dtype or not np.array_equal(one, expected_one):
        log.warning("validation-free %s differs from scikit-learn's on probe rows; not used", method)
        return None
    return native
