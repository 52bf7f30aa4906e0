"""A model's performance baseline from its holdout, for the performance breach test of later windows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from detectors.performance_evidence import EVIDENCE_METRICS, Baseline, baseline_from_rows


def holdout_baseline(
    estimator: Any, holdout: pd.DataFrame, *, features: Sequence[str], target: str, metric: str
) -> Baseline | None:
    """:class:`~detectors.performance_evidence.Baseline` of ``metric`` for ``estimator`` on ``holdout``
    (store it with the version; pass it to :func:`~detectors.performance_evidence.window_evidence`).

    None when ``metric`` has no evidence test (f1, r2), the holdout is empty, or the metric needs
    probabilities the estimator does not give.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.1, 0.9, 2.2, 2.8]})
    >>> b = holdout_baseline(LinearRegression().fit(df[["x"]], df["y"]), df, features=["x"], target="y",
    ...                      metric="rmse")
    >>> b.metric, b.n, round(b.value, 3)
    ('rmse', 4, 0.143)
    """
    if metric not in EVIDENCE_METRICS or len(holdout) == 0:
        return None
    X, y = holdout[list(features)], np.asarray(holdout[target])
    if metric in ("accuracy", "rmse", "mae"):
        return baseline_from_rows(metric, y, np.asarray(estimator.predict(X)))
    if not hasattr(estimator, "predict_proba"):
        return None
    classes = list(getattr(estimator, "classes_", np.unique(y)))
    try:
        proba = np.asarray(estimator.predict_proba(X), dtype=float)
        return baseline_from_rows(metric, y, None, proba=proba, labels=classes)
    except ValueError:  # one class in the holdout (AUC) or labels the model never saw (log loss)
        return None
