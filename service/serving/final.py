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
from sklearn.dummy import DummyClassifier
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
        out = np.empty((p.shape[0], 2))
        np.subtract(1.0, p, out=out[:, 0])
        out[:, 1] = p
        return out

    return proba


def _linear_regression(est: Ridge | LinearRegression) -> Op:
    """LinearModel._decision_function after its validate_data."""
    coef, intercept = est.coef_, est.intercept_
    if coef.ndim == 1:
        return lambda x: np.asarray(x @ coef + intercept)
    return lambda x: np.asarray(x @ coef.T + intercept)


def _tree(est: Any, method: str) -> Op:
    """predict_proba / predict of a single-output tree after its checks: `tree_.predict` on float32
    (what its validation would make), sliced to the classes as predict_proba slices it."""
    tree = est.tree_
    if method == "predict_proba":
        classes = est.n_classes_
        return lambda x: np.asarray(tree.predict(x.astype(np.float32))[:, :classes])
    return lambda x: np.asarray(tree.predict(x.astype(np.float32))[:, 0])


def _constant_init(est: GradientBoostingClassifier) -> np.ndarray | None:
    """The init estimator's raw prediction for one row if it is the same for every row, else None.

    `_raw_predict_init` gets it from a fully validated `init_.predict_proba` on every call; for 'zero' and
    the default DummyClassifier('prior') it is a per-class constant, computed here as scikit-learn does.
    """
    if isinstance(est.init_, str) and est.init_ == "zero":
        return np.zeros(est.n_trees_per_iteration_)
    if type(est.init_) is not DummyClassifier or getattr(est.init_, "_strategy", None) != "prior":
        return None
    from sklearn.ensemble._gb import _init_raw_predictions  # private: if it moves, scikit-learn's path

    def init(rows: int) -> np.ndarray:
        return np.asarray(
            _init_raw_predictions(np.zeros((rows, est.n_features_in_)), est.init_, est._loss, True)
        )

    # an odd row count: a vectorised log's tail, if it rounds differently, shows as a different row
    many, one = init(PROBE_ROWS + 3), init(1)
    if not (np.array_equal(one[0], many[0]) and (many == many[:1]).all()):
        return None
    row: np.ndarray = many[0].copy()
    return row


def _boosting(est: GradientBoostingClassifier) -> Op:
    """decision_function after its validate_data (C-ordered float32), then the loss's probabilities."""
    init, loss = _constant_init(est), est._loss
    if init is None:  # an init estimator whose output may depend on the row

        def proba(x: np.ndarray) -> np.ndarray:
            raw = est._raw_predict(np.ascontiguousarray(x, dtype=np.float32))
            if raw.shape[1] == 1:
                raw = raw.ravel()
            return np.asarray(loss.predict_proba(raw))

        return proba
    from sklearn.ensemble._gradient_boosting import predict_stages

    trees, rate = est.estimators_, est.learning_rate

    def constant_init_proba(x: np.ndarray) -> np.ndarray:  # _raw_predict without _raw_predict_init
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        raw = np.empty((x32.shape[0], init.shape[0]))
        raw[:] = init
        predict_stages(trees, x32, rate, raw)
        return np.asarray(loss.predict_proba(raw.ravel() if raw.shape[1] == 1 else raw))

    return constant_init_proba


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """sklearn.utils._array_api._logsumexp(a, axis=1) of a float64 array, without its namespace dispatch.

    The same numpy operations in the same order on arrays of the same layout (np.array keeps a's F order
    where ndarray.copy would not): the reductions and exp/log then round the same way. np.max / np.sum are
    these ufuncs' reduce behind ~1.5 us of Python argument handling each.
    """
    a_max = np.maximum.reduce(a, axis=1, keepdims=True)
    index_max = a == a_max
    a = np.array(a, copy=True)
    a[index_max] = -np.inf
    m = np.add.reduce(index_max.astype(a.dtype), axis=1, keepdims=True, dtype=a.dtype)
    shift = np.where(np.isfinite(a_max), a_max, 0)
    exp = np.exp(a - shift)
    s = np.add.reduce(exp, axis=1, keepdims=True, dtype=exp.dtype)
    s = np.where(s == 0, s, s / m)
    out: np.ndarray = np.squeeze(np.log1p(s) + np.log(m) + a_max, axis=1)
    return out


def _bayes(est: GaussianNB) -> Op:
    """predict_log_proba after its validate_data, exponentiated as predict_proba does."""
    var, theta = est.var_, est.theta_
    # _joint_log_likelihood's row-independent terms, each class's computed as it computes them
    joint = np.array([np.log(est.class_prior_[i]) for i in range(len(est.classes_))])
    n_ij = np.array([-0.5 * np.sum(np.log(2.0 * np.pi * var[i, :])) for i in range(len(est.classes_))])
    theta3, var3, n_ij2, joint2 = theta[:, None, :], var[:, None, :], n_ij[:, None], joint[:, None]

    def proba(x: np.ndarray) -> np.ndarray:
        # all classes at once: the per-element operations and each row's sum are those of the class loop,
        # and (classes, rows).T is the layout of its np.stack(...).T
        jll = (joint2 + (n_ij2 - 0.5 * np.add.reduce(((x - theta3) ** 2) / var3, axis=2))).T
        return np.asarray(np.exp(jll - np.atleast_2d(_logsumexp_rows(jll)).T))

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
    elif kind is DecisionTreeRegressor and est.n_outputs_ == 1:
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
