"""A classifier's labels from the `predict_proba` call the service makes anyway.

scikit-learn's fixed cost per call (input validation, ~70-200 us) is paid once per micro-batch for
`predict` and once more for `predict_proba`; with several models in one process the batches are small and
that cost decides the throughput. For the estimators below `predict` is the argmax of a monotone transform
of the scores `predict_proba` is computed from, so `classes_[argmax(proba)]` is the same label, except where
the top two probabilities are (nearly) tied: there rounding, or a tie rule such as gradient boosting's
`raw >= 0`, may pick the other class, so those rows get `predict` itself (not for trees and forests, whose
`predict` is that very argmax). Used only if it reproduces `predict` on probe rows at load; any other
estimator keeps both calls.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

log = logging.getLogger("driftloop.serving")

# exact types only: a subclass may override predict
SUPPORTED: tuple[type, ...] = (
    DecisionTreeClassifier,
    ExtraTreeClassifier,
    RandomForestClassifier,
    ExtraTreesClassifier,
    LogisticRegression,
    GaussianNB,
    GradientBoostingClassifier,
)
ARGMAX_OF_PROBA: tuple[type, ...] = (
    DecisionTreeClassifier,
    ExtraTreeClassifier,
    RandomForestClassifier,
    ExtraTreesClassifier,
)
# far above the few-ulp disagreement of softmax / expit with their scores, far below any real margin
TIE_GAP = 1e-6
PROBE_ROWS = 256


def _take(data: Any, rows: np.ndarray) -> Any:
    return data.iloc[rows] if hasattr(data, "iloc") else data[rows]  # DataFrame, ndarray or sparse


class ProbaLabels:
    """`labels(proba, data)` is `final.predict(data).tolist()` for `proba = final.predict_proba(data)`."""

    def __init__(self, final: Any) -> None:
        self._final = final
        self._values: list[Any] = final.classes_.tolist()  # the Python values `.tolist()` gives
        # their predict *is* classes_[argmax(predict_proba)]: a tie picks the same class in both
        self._exact = type(final) in ARGMAX_OF_PROBA
        self._binary = len(self._values) == 2

    def labels(self, proba: np.ndarray, data: Any) -> list[Any]:
        values = self._values
        out = [values[i] for i in proba.argmax(axis=1).tolist()]
        if self._exact:
            return out
        if self._binary:  # the top two are the two: their gap is |p1 - p0| (a batch is a few rows)
            near = [i for i, (a, b) in enumerate(proba.tolist()) if abs(b - a) < TIE_GAP]
        else:
            top_two = np.partition(proba, -2, axis=1)[:, -2:]
            near = np.flatnonzero(top_two[:, 1] - top_two[:, 0] < TIE_GAP).tolist()
        if near:  # rare: only these rows pay for the second call
            fixed = np.asarray(self._final.predict(_take(data, np.array(near)))).tolist()
            for i, label in zip(near, fixed, strict=True):
                out[i] = label
        return out


def proba_labels(final: Any) -> ProbaLabels | None:
    """ProbaLabels for `final` if it is a supported single-output classifier and derived labels equal its
    `predict` on random probe rows; else None."""
    classes = getattr(final, "classes_", None)
    n_features = getattr(final, "n_features_in_", None)
    if type(final) not in SUPPORTED or not isinstance(classes, np.ndarray) or classes.ndim != 1:
        return None
    if len(classes) < 2 or not isinstance(n_features, int):
        return None
    derived = ProbaLabels(final)
    probe = np.random.default_rng(0).normal(scale=3.0, size=(PROBE_ROWS, n_features))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "X does not have valid feature names"
            proba = np.asarray(final.predict_proba(probe), dtype=float)
            expected = np.asarray(final.predict(probe))
            got = derived.labels(proba, probe)
    except Exception as exc:  # the probe itself failed: keep both calls
        log.info("predict and predict_proba both called (probe failed: %s)", exc)
        return None
    if proba.shape != (PROBE_ROWS, len(classes)):
        return None
    if got != expected.tolist() or [type(v) for v in got] != [type(v) for v in expected.tolist()]:
        log.warning("labels from predict_proba differ from predict on probe rows; both are called")
        return None
    return derived
