"""Per-row losses and DeLong's AUC variance, the raw material of the performance evidence tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

_EPS = 1e-15  # sklearn's log-loss clipping


def per_row_losses(
    metric: str, y_true: Any, y_pred: Any, *, proba: Any = None, labels: Any = None
) -> np.ndarray:
    """Per-row squared error (rmse), absolute error (mae) or log loss of the true class (log_loss).

    The mean of the squared errors is the MSE (rmse = its square root); the means of
    the others are the metric itself.
    ``proba`` is the positive-class probability (1-D, binary) or one column per label in ``labels`` order.

    Examples
    --------
    >>> per_row_losses("rmse", [1.0, 2.0], [1.5, 4.0]).tolist()
    [0.25, 4.0]
    >>> per_row_losses("log_loss", [0, 1], None, proba=[0.2, 0.9]).round(3).tolist()
    [0.223, 0.105]
    """
    if metric in ("rmse", "mae"):
        error = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
        return error**2 if metric == "rmse" else np.abs(error)
    if metric != "log_loss":
        raise ValueError(f"no per-row loss for metric {metric!r}; valid: rmse, mae, log_loss")
    if proba is None:
        raise ValueError("log_loss needs probabilities (proba)")
    truth = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    classes = list(labels) if labels is not None else sorted(set(truth.tolist()))
    if p.ndim == 1:
        if len(classes) > 2:
            raise ValueError("1-D probabilities need a binary target")
        p = np.column_stack([1.0 - p, p])
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != p.shape[1]:
        raise ValueError(f"{p.shape[1]} probability columns for {len(index)} labels")
    try:
        rows = np.array([index[v] for v in truth.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not among the labels {classes}") from exc
    chosen = p[np.arange(len(rows)), rows] / np.clip(p.sum(axis=1), _EPS, None)
    return np.asarray(-np.log(np.clip(chosen, _EPS, 1.0)))


def auc_delong(positive: Any, score: Any) -> tuple[float, float]:
    """ROC AUC and its DeLong (1988) variance, computed with midranks in O(n log n).

    Examples
    --------
    >>> auc, var = auc_delong([True, False, True, False, True], [0.9, 0.3, 0.6, 0.7, 0.8])
    >>> round(auc, 3), round(var, 4)
    (0.833, 0.0556)
    """
    pos = np.asarray(positive, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    m, n = int(pos.sum()), int((~pos).sum())
    if m == 0 or n == 0:
        raise ValueError("ROC AUC needs both classes in the window")
    x, y = s[pos], s[~pos]
    all_ranks = stats.rankdata(np.concatenate([x, y]))
    # placement values: the share of the other class each score beats (ties count half)
    v10 = (all_ranks[:m] - stats.rankdata(x)) / n
    v01 = 1.0 - (all_ranks[m:] - stats.rankdata(y)) / m
    auc = float(v10.mean())
    var = (float(v10.var(ddof=1)) / m if m > 1 else 0.0) + (float(v01.var(ddof=1)) / n if n > 1 else 0.0)
    return auc, var
