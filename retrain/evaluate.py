"""Champion vs challenger on the same holdout: the most recent labeled rows, never used for training."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import is_classifier, is_regressor
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from detectors.performance_losses import per_row_losses
from retrain.errors import EvaluationFailed, InvalidSetting
from retrain.paired import (
    DEFAULT_ALPHA,
    DEFAULT_RESAMPLES,
    MetricOf,
    PairedComparison,
    mcnemar,
    paired_bootstrap,
)

CLASSIFIER_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSOR_METRICS = ("rmse", "mae", "r2")
#: Metrics where a smaller value is the better model.
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})
METRICS = CLASSIFIER_METRICS + REGRESSOR_METRICS


@dataclass(frozen=True)
class Evaluation:
    """Both models scored on one holdout, and whether the challenger passed the gate.

    ``improvement`` is signed so that positive always means the challenger is better, whichever way
    the metric points. ``passed`` requires an improvement above zero and at least ``margin`` and, unless
    the gate ran with ``alpha=None``, a paired test (``paired``) rejecting "not better" at ``alpha``.
    """

    metric: str
    champion_score: float
    challenger_score: float
    champion_metrics: dict[str, float]
    challenger_metrics: dict[str, float]
    margin: float
    passed: bool
    n_holdout: int
    improvement: float = field(default=float("nan"))
    higher_is_better: bool = True
    paired: PairedComparison | None = None


def split_by_time(
    df: pd.DataFrame, *, time_column: str, holdout_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into (train, holdout), the holdout being the most recent ``holdout_fraction`` of rows.

    Examples
    --------
    >>> df = pd.DataFrame({"t": [3, 1, 4, 2, 5], "x": list("cadbe")})
    >>> train, holdout = split_by_time(df, time_column="t", holdout_fraction=0.4)
    >>> list(train["x"]), list(holdout["x"])
    (['a', 'b', 'c'], ['d', 'e'])
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise InvalidSetting(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    if time_column not in df.columns:
        raise InvalidSetting(f"time column {time_column!r} not in data columns {list(df.columns)}")
    if len(df) < 2:
        raise InvalidSetting(f"need at least 2 rows to split, got {len(df)}")
    ordered = df.sort_values(time_column, kind="stable").reset_index(drop=True)
    n_holdout = min(len(ordered) - 1, max(1, math.ceil(len(ordered) * holdout_fraction)))
    cut = len(ordered) - n_holdout
    return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)


def score(estimator: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """Every metric computable for ``estimator`` on (X, y): classifier or regressor metrics.

    Metrics that are undefined on this data (ROC AUC with one class in ``y``, log loss without
    ``predict_proba``) are left out rather than reported as NaN.
    """
    if _is_classifier(estimator, y):
        return _classifier_scores(estimator, X, y)
    prediction = np.asarray(estimator.predict(X), dtype=float)
    truth = np.asarray(y, dtype=float)
    return {
        "rmse": float(math.sqrt(mean_squared_error(truth, prediction))),
        "mae": float(mean_absolute_error(truth, prediction)),
        "r2": float(r2_score(truth, prediction)) if len(truth) > 1 else float("nan"),
    }


def evaluate(
    champion: Any,
    challenger: Any,
    holdout: pd.DataFrame,
    *,
    features: Sequence[str],
    target: str,
    metric: str = "accuracy",
    margin: float = 0.0,
    alpha: float | None = DEFAULT_ALPHA,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Evaluation:
    """Score both models on ``holdout`` and decide whether the challenger beats the champion.

    The challenger passes when it is better on ``metric`` (direction-aware: lower wins for log_loss,
    rmse, mae) by more than zero, by at least ``margin``, and significantly: a paired test on the same
    rows (McNemar exact for accuracy, a paired bootstrap of ``n_resamples`` seeded resamples otherwise)
    at ``alpha``. ``alpha=None`` skips the test (the margin rule alone, as before the paired gate).

    Raises
    ------
    InvalidSetting
        For an unknown metric, a negative margin, or a metric that does not apply to this model.
    EvaluationFailed
        If either model cannot predict on the holdout.
    """
    if metric not in METRICS:
        raise InvalidSetting(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if margin < 0:
        raise InvalidSetting(f"margin must be >= 0, got {margin}")
    if len(holdout) == 0:
        raise EvaluationFailed("the holdout is empty")
    X, y = holdout[list(features)], holdout[target]
    scores: dict[str, dict[str, float]] = {}
    for role, model in (("champion", champion), ("challenger", challenger)):
        try:
            scores[role] = score(model, X, y)
        except Exception as exc:
            raise EvaluationFailed(f"scoring the {role} failed: {type(exc).__name__}: {exc}") from exc
    if metric not in scores["champion"] or metric not in scores["challenger"]:
        available = sorted(set(scores["champion"]) & set(scores["challenger"]))
        raise InvalidSetting(f"metric {metric!r} is not computable for these models; available: {available}")
    champion_score, challenger_score = scores["champion"][metric], scores["challenger"][metric]
    higher = metric not in LOWER_IS_BETTER
    improvement = (challenger_score - champion_score) * (1.0 if higher else -1.0)
    # the epsilon keeps "beats by exactly the margin" from failing on float rounding (0.03 - 0.02 < 0.01)
    passed = bool(np.isfinite(improvement) and improvement > 0 and improvement >= margin - 1e-12)
    paired = None
    if alpha is not None:
        try:
            paired = _paired(champion, challenger, X, y, metric, alpha, margin, n_resamples, seed)
        except ValueError as exc:
            raise EvaluationFailed(f"the paired test on {metric} failed: {exc}") from exc
        passed = passed and paired.passed
    return Evaluation(
        metric=metric,
        champion_score=champion_score,
        challenger_score=challenger_score,
        champion_metrics=scores["champion"],
        challenger_metrics=scores["challenger"],
        margin=margin,
        passed=passed,
        n_holdout=len(holdout),
        improvement=float(improvement),
        higher_is_better=higher,
        paired=paired,
    )


def evaluation_metrics(evaluation: Evaluation) -> Mapping[str, float]:
    """Flat ``champion_<metric>`` / ``challenger_<metric>`` pairs, ready for ``mlflow.log_metrics``."""
    flat = {f"champion_{k}": v for k, v in evaluation.champion_metrics.items()}
    flat.update({f"challenger_{k}": v for k, v in evaluation.challenger_metrics.items()})
    flat["improvement"] = evaluation.improvement
    flat["n_holdout"] = float(evaluation.n_holdout)
    if evaluation.paired is not None:
        flat["paired_p_value"] = evaluation.paired.p_val
    # undefined values (r2 on one row) would only clutter the run's charts
    return {k: v for k, v in flat.items() if math.isfinite(v)}


def _is_classifier(estimator: Any, y: pd.Series) -> bool:
    # sklearn >= 1.6 raises on objects without __sklearn_tags__ (duck-typed user models)
    with contextlib.suppress(AttributeError, TypeError):
        if is_classifier(estimator):
            return True
        if is_regressor(estimator):
            return False
    # an estimator without sklearn tags: trust predict_proba, else a non-float target means classes
    return hasattr(estimator, "predict_proba") or not pd.api.types.is_float_dtype(y)


def _classifier_scores(estimator: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    prediction = estimator.predict(X)
    classes = list(getattr(estimator, "classes_", np.unique(y)))
    result = {"accuracy": float(accuracy_score(y, prediction))}
    if len(classes) == 2:
        result["f1"] = float(f1_score(y, prediction, pos_label=classes[1], zero_division=0))
    else:
        result["f1"] = float(f1_score(y, prediction, average="macro", zero_division=0))
    if not hasattr(estimator, "predict_proba"):
        return result
    proba = np.asarray(estimator.predict_proba(X), dtype=float)
    # log loss is undefined when y holds labels the model never saw
    with contextlib.suppress(ValueError):
        result["log_loss"] = float(log_loss(y, proba, labels=classes))
    if y.nunique() >= 2:
        try:
            if len(classes) == 2:
                result["roc_auc"] = float(roc_auc_score(y == classes[1], proba[:, 1]))
            else:
                result["roc_auc"] = float(roc_auc_score(y, proba, multi_class="ovr", labels=classes))
        except ValueError:
            pass  # multiclass AUC needs every class present in y
    return result


def _paired(
    champion: Any, challenger: Any, X: pd.DataFrame, y: pd.Series, metric: str,
    alpha: float, margin: float, n_resamples: int, seed: int,
) -> PairedComparison:  # fmt: skip
    if metric == "accuracy":
        truth = np.asarray(y)
        hits = [np.asarray(m.predict(X)) == truth for m in (champion, challenger)]
        return mcnemar(hits[0], hits[1], alpha=alpha, margin=margin)
    of_champion, of_challenger = (_row_metric(m, X, y, metric) for m in (champion, challenger))
    return paired_bootstrap(
        metric, of_champion, of_challenger, len(y), higher_is_better=metric not in LOWER_IS_BETTER,
        alpha=alpha, margin=margin, n_resamples=n_resamples, seed=seed,
    )  # fmt: skip


def _row_metric(model: Any, X: pd.DataFrame, y: pd.Series, metric: str) -> MetricOf:
    """``rows -> metric`` over a subset of the holdout; means of per-row losses where the metric is one."""
    if metric in ("rmse", "mae"):
        losses = per_row_losses(metric, np.asarray(y, dtype=float), np.asarray(model.predict(X), dtype=float))
        if metric == "rmse":
            return lambda rows: math.sqrt(float(losses[rows].mean()))
        return lambda rows: float(losses[rows].mean())
    if metric == "r2":
        truth, pred = np.asarray(y, dtype=float), np.asarray(model.predict(X), dtype=float)
        return lambda rows: _r2(truth[rows], pred[rows])
    classes = list(getattr(model, "classes_", np.unique(y)))
    truth = np.asarray(y)
    if metric == "f1":
        pred = np.asarray(model.predict(X))
        return lambda rows: _f1(truth[rows], pred[rows], classes)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    if metric == "log_loss":
        lost = per_row_losses("log_loss", truth, None, proba=proba, labels=classes)
        return lambda rows: float(lost[rows].mean())
    return lambda rows: _auc(truth[rows], proba[rows], classes)


def _r2(truth: np.ndarray, pred: np.ndarray) -> float:
    total = float(np.sum((truth - truth.mean()) ** 2))
    return 1.0 - float(np.sum((truth - pred) ** 2)) / total if total > 0 else float("nan")


def _f1(truth: np.ndarray, pred: np.ndarray, classes: list[Any]) -> float:
    """F1 as in :func:`_classifier_scores` (binary for two classes, else macro), in numpy: sklearn's input
    checks cost milliseconds per call, times thousands of resamples."""
    labels = [classes[1]] if len(classes) == 2 else sorted({*truth.tolist(), *pred.tolist()})
    scores = []
    for label in labels:
        t, p = truth == label, pred == label
        tp, wrong = float(np.sum(t & p)), float(np.sum(t ^ p))
        scores.append(2 * tp / (2 * tp + wrong) if tp + wrong > 0 else 0.0)
    return float(np.mean(scores))


def _auc(truth: np.ndarray, proba: np.ndarray, classes: list[Any]) -> float:
    try:
        if len(classes) == 2:  # Mann-Whitney from midranks, the same value as roc_auc_score
            positive = truth == classes[1]
            m, n = int(positive.sum()), int((~positive).sum())
            if m == 0 or n == 0:
                return float("nan")
            ranks = rankdata(proba[:, 1])
            return float((ranks[positive].sum() - m * (m + 1) / 2) / (m * n))
        return float(roc_auc_score(truth, proba, multi_class="ovr", labels=classes))
    except ValueError:  # a resample with one class: undefined, counted as "not better"
        return float("nan")
