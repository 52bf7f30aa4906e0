"""Realized performance of labeled predictions against a reference performance.

The reference value of the watched metric is the reference profile's `reference_performance` when it has
the metric; otherwise the *baseline*: the first complete labeled window of the same model version (its
run records `baseline: true`). A new champion therefore gets its own baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from detectors.performance import (
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    PerformanceResult,
    classification_metrics,
    compare_performance,
    regression_metrics,
)
from service.config import Settings
from service.db.tables import FeatureResult
from service.monitor.reader import LabeledData
from service.monitor.store import Outcome, finite, new_run
from service.monitor.windows import Window

REGRESSION_METRICS = ("rmse", "mae", "r2")


@dataclass(frozen=True)
class Realized:
    task: str  # classification | regression
    metric: str
    metrics: dict[str, float]


def _is_regression(labels: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in labels) and any(
        isinstance(v, float) and not float(v).is_integer() for v in labels
    )


def _positive_proba(probabilities: list[Any], positive: Any) -> np.ndarray | None:
    key = str(positive)
    values = []
    for p in probabilities:
        if not isinstance(p, dict) or key not in p:
            return None
        values.append(float(p[key]))
    return np.array(values, dtype=np.float64)


def _aligned(values: list[Any]) -> np.ndarray:
    """Class labels as one numpy dtype scikit-learn accepts (int, bool or text)."""
    if all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    return np.array([orjson.dumps(v).decode() if isinstance(v, list | dict) else str(v) for v in values])


def realized(data: LabeledData, metric: str) -> Realized:
    """Metrics of the window; `metric` falls back to accuracy / rmse when it does not fit the task."""
    if _is_regression(data.labels):
        m = regression_metrics(np.array(data.labels, dtype=float), np.array(data.outputs, dtype=float))
        return Realized("regression", metric if metric in REGRESSION_METRICS else "rmse", m)
    truth, pred = _aligned(data.labels), _aligned(data.outputs)
    if truth.dtype != pred.dtype:  # e.g. labels sent as 1 for outputs "1": compare as text
        truth, pred = truth.astype(str), pred.astype(str)
    labels = sorted({*truth.tolist(), *pred.tolist()})
    proba = _positive_proba(data.probabilities, labels[-1]) if len(labels) == 2 else None
    try:
        m = classification_metrics(truth, pred, proba=proba, labels=labels)
    except ValueError:  # probabilities that do not fit the labels: the label metrics still hold
        m = classification_metrics(truth, pred, labels=labels)
    chosen = metric if metric in m and metric not in REGRESSION_METRICS else "accuracy"
    return Realized("classification", chosen, m)


def compare(
    current: Realized, reference: dict[str, float], tolerance: float, n_rows: int | None = None
) -> PerformanceResult | None:
    if current.metric not in reference:
        return None
    assert current.metric in HIGHER_IS_BETTER + LOWER_IS_BETTER
    return compare_performance(
        current.metrics,
        reference,
        metric=current.metric,
        tolerance=tolerance,
        relative=current.metric in ("rmse", "mae"),
        n_current=n_rows,
    )


def outcome(
    data: LabeledData,
    window: Window,
    s: Settings,
    reference: dict[str, float] | None,
    source: str,
    *,
    n: int,
    lo: datetime,
    hi: datetime,
) -> Outcome:
    """The performance run of a labeled window against its reference metrics (or its baseline)."""
    current = realized(data, s.performance_metric)
    compared = compare(current, reference, s.performance_tolerance, n_rows=n) if reference else None
    baseline = compared is None and window.mode in ("rows", "time")
    summary: dict[str, Any] = {
        "window": window.describe(),
        "task": current.task,
        "metric": current.metric,
        "metrics": current.metrics,
        "reference_metrics": reference,
        "reference_source": source,
        "baseline": baseline,
        "performance": compared.to_dict() if compared else None,
    }
    name, version, metric = window.model_name, window.model_version, current.metric
    value = current.metrics[current.metric]
    if compared is None:
        summary["message"] = (
            f"baseline of {name} version {version}: {metric} {value:.4f}; later windows compare with it"
            if baseline
            else f"{metric} {value:.4f}; no baseline yet to compare with"
        )
    elif compared.is_drift:
        summary["message"] = (
            f"Performance of {name} version {version} degraded: {metric} {value:.4f} vs reference "
            f"{compared.reference:.4f} (worst acceptable {compared.threshold:.4f}, "
            f"{abs(compared.value - compared.threshold):.4f} past it)"
        )
    else:
        summary["message"] = f"{metric} {value:.4f} within tolerance of reference {compared.reference:.4f}"
    breach = bool(compared is not None and compared.is_drift)
    run = new_run(
        status=compared.status if compared else "no_drift",
        n_rows=data.n_rows,
        start=lo,
        end=hi,
        summary=summary,
        is_breach=breach,
    )
    result = FeatureResult(
        run_id=0,
        feature=metric,
        kind="metric",
        method="performance",
        statistic=finite(value),
        threshold=finite(compared.threshold) if compared else None,
        is_drift=breach,
        status=compared.status if compared else "no_drift",
    )
    details = {
        "metric": metric,
        "value": value,
        "reference": compared.reference if compared else None,
        "threshold": compared.threshold if compared else None,
        "delta": compared.delta if compared else None,
        "n_rows": data.n_rows,
        "window": {"start": run.window_start.isoformat(), "end": run.window_end.isoformat()},
    }
    return Outcome(run, [result], summary["message"], details)
