"""Realized model performance on labeled rows, compared with the reference performance."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn import metrics

from detectors.results import jsonable

HIGHER_IS_BETTER = ("accuracy", "f1", "roc_auc", "r2")
LOWER_IS_BETTER = ("log_loss", "rmse", "mae")


@dataclass(frozen=True)
class PerformanceResult:
    """Current value of a metric against the reference; ``is_drift`` (alias ``degraded``) when it got worse
    by more than the tolerance. ``threshold`` is the worst acceptable value."""

    metric: str
    value: float
    reference: float
    delta: float
    threshold: float
    is_drift: bool
    status: str

    @property
    def degraded(self) -> bool:
        """Same as ``is_drift``."""
        return self.is_drift

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {k: jsonable(v) for k, v in asdict(self).items()}


def classification_metrics(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    proba: np.ndarray | None = None,
    labels: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Accuracy and F1 (binary for two labels, else macro); ROC AUC and log loss when ``proba`` is given.

    ``proba`` is the positive-class probability (1-D, binary) or one column per label in ``labels`` order.

    Examples
    --------
    >>> m = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0], proba=np.array([0.2, 0.9, 0.4, 0.1]))
    >>> {k: round(v, 3) for k, v in m.items()}
    {'accuracy': 0.75, 'f1': 0.667, 'roc_auc': 1.0, 'log_loss': 0.338}
    """
    truth = np.asarray(y_true)
    pred = np.asarray(y_pred)
    label_list = list(labels) if labels is not None else sorted(set(truth.tolist()) | set(pred.tolist()))
    out = {"accuracy": float(metrics.accuracy_score(truth, pred))}
    if len(label_list) == 2:
        out["f1"] = float(metrics.f1_score(truth, pred, labels=label_list, pos_label=label_list[1]))
    else:
        out["f1"] = float(metrics.f1_score(truth, pred, labels=label_list, average="macro"))
    if proba is not None and len(set(truth.tolist())) > 1:
        p = np.asarray(proba, dtype=np.float64)
        if p.ndim == 1:
            out["roc_auc"] = float(metrics.roc_auc_score(truth == label_list[-1], p))
            out["log_loss"] = float(metrics.log_loss(truth == label_list[-1], p, labels=[False, True]))
        else:
            out["roc_auc"] = float(metrics.roc_auc_score(truth, p, multi_class="ovr", labels=label_list))
            out["log_loss"] = float(metrics.log_loss(truth, p, labels=label_list))
    return out


def regression_metrics(
    y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """RMSE, MAE and R^2.

    Examples
    --------
    >>> regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    {'rmse': 1.1547005383792515, 'mae': 0.6666666666666666, 'r2': -1.0}
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(t, p))),
        "mae": float(metrics.mean_absolute_error(t, p)),
        "r2": float(metrics.r2_score(t, p)),
    }


def compare_performance(
    current: Mapping[str, float],
    reference: Mapping[str, float],
    *,
    metric: str = "accuracy",
    tolerance: float = 0.05,
    relative: bool = False,
    n_current: int | None = None,
    z: float = 2.0,
) -> PerformanceResult:
    """Flag a metric that is worse than the reference by more than ``tolerance`` (absolute, or a fraction
    of the reference value when ``relative``).

    With ``n_current`` (rows behind the current accuracy) the threshold also leaves ``z`` binomial standard
    errors of sampling slack, so a small window's chance dip is not called a degradation.

    Examples
    --------
    >>> r = compare_performance({"accuracy": 0.80}, {"accuracy": 0.90}, metric="accuracy", tolerance=0.05)
    >>> r.is_drift, round(r.delta, 2), round(r.threshold, 2)
    (True, -0.1, 0.85)
    >>> compare_performance({"accuracy": 0.80}, {"accuracy": 0.90}, tolerance=0.05, n_current=100).is_drift
    False
    """
    valid = HIGHER_IS_BETTER + LOWER_IS_BETTER
    if metric not in valid:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(valid)}")
    if metric not in current or metric not in reference:
        raise ValueError(f"metric {metric!r} missing from current or reference metrics")
    value, ref = float(current[metric]), float(reference[metric])
    margin = tolerance * abs(ref) if relative else tolerance
    if n_current and metric == "accuracy" and 0.0 < ref < 1.0:
        margin += z * math.sqrt(ref * (1.0 - ref) / n_current)
    threshold = ref - margin if metric in HIGHER_IS_BETTER else ref + margin
    worse = value < threshold if metric in HIGHER_IS_BETTER else value > threshold
    return PerformanceResult(
        metric, value, ref, value - ref, threshold, bool(worse), "drift" if worse else "no_drift"
    )
