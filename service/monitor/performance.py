"""Realized performance of a labeled window, and whether it breaches: decided by evidence.

The task comes from the model (stored with the reference, `monitor/tasks.py`), and so does the watched
metric (`DRIFTLOOP_PERFORMANCE_METRIC`, empty = accuracy / rmse by task). For a metric with an evidence test
(accuracy, roc_auc, rmse, mae, log_loss) the window is compared with the version's baseline
(`monitor/pooling.py`) by a one-sided test at `DRIFTLOOP_PERFORMANCE_ALPHA` with a minimum effect
(`DRIFTLOOP_PERFORMANCE_MIN_EFFECT`): a breach needs both; a *decisive* breach (p < 1e-6 and 3x the minimum
effect) opens the episode on its own window (`monitor/episodes.py`). Metrics without a test (f1, r2) keep
the fixed tolerance against the reference metrics. The run stores the test, p-value and effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detectors.performance import (
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    PerformanceResult,
    classification_metrics,
    compare_performance,
    regression_metrics,
)
from detectors.performance_evidence import EVIDENCE_METRICS
from service.config import Settings
from service.db.tables import FeatureResult
from service.monitor import evidence as ev_
from service.monitor import pooling
from service.monitor.reader import LabeledData
from service.monitor.store import Outcome, finite, new_run
from service.monitor.tasks import InvalidSetting, watched_metric
from service.monitor.windows import Window


@dataclass(frozen=True)
class Context:
    """What a check of a window knows besides its rows."""

    task: str | None  # from the model; None when it could not be told
    state: pooling.State  # the baseline before this check
    reference: dict[str, float] | None  # held-out metrics (tolerance rule of f1 / r2)
    source: str
    predicted_from: datetime | None = None  # first prediction time of the window's rows


def guessed_task(labels: list[Any]) -> str:
    """Only when the model's task is unknown: non-integer numeric labels mean regression."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in labels)
    fractional = any(isinstance(v, float) and not float(v).is_integer() for v in labels)
    return "regression" if numeric and fractional else "classification"


def all_metrics(task: str, a: ev_.WindowArrays) -> dict[str, float]:
    if task == "regression":
        return regression_metrics(a.truth, a.pred)
    proba = a.proba[:, -1] if a.proba is not None and a.labels and len(a.labels) == 2 else None
    try:
        return classification_metrics(a.truth, a.pred, proba=proba, labels=a.labels)
    except ValueError:  # probabilities that do not fit the labels: the label metrics still hold
        return classification_metrics(a.truth, a.pred, labels=a.labels)


def outcome(
    data: LabeledData, window: Window, s: Settings, ctx: Context, *, n: int, lo: datetime, hi: datetime
) -> Outcome:
    """The performance run of a labeled window against its baseline."""
    task = ctx.task or guessed_task(data.labels)
    name, version = window.model_name, window.model_version
    try:
        metric = watched_metric(s, task)
    except InvalidSetting as exc:  # a wrong setting is shown, never a crash loop
        invalid: dict[str, Any] = {"window": window.describe(), "task": task}
        invalid["message"] = f"not checked: {exc}"
        return Outcome(new_run(status="invalid_setting", n_rows=n, start=lo, end=hi, summary=invalid))
    a = ev_.arrays(data, task)
    metrics = all_metrics(task, a)
    value = metrics.get(metric, float("nan"))
    summary: dict[str, Any] = {
        "window": window.describe(),
        "task": task,
        "task_source": "model" if ctx.task else "label values (the model's task is unknown)",
        "metric": metric,
        "metrics": metrics,
        "reference_metrics": ctx.reference,
        "reference_source": ctx.source,
        "predicted_from": ctx.predicted_from.isoformat() if ctx.predicted_from else None,
        "baseline": False,
        "evidence": None,
        "performance": None,
    }
    details: dict[str, Any] = {"metric": metric, "value": value, "n_rows": data.n_rows}
    breach, decisive, status, threshold = False, False, "no_drift", None
    if metric in EVIDENCE_METRICS:
        try:
            own = ev_.window_baseline(metric, a)
        except ValueError as exc:  # e.g. log loss / roc_auc without probabilities, one class in the window
            return _untestable(summary, exc, n=n, lo=lo, hi=hi)
        summary["baseline_state"], summary["window_baseline"] = ctx.state, own.to_dict()
        base = pooling.baseline_of(ctx.state)
        if base is None or base.metric != metric:
            summary["baseline"] = True
            summary["message"] = (
                f"baseline of {name} version {version}: {metric} {value:.4f} on {data.n_rows} rows; "
                "later windows are tested against it"
            )
        else:
            try:
                found = ev_.evidence(
                    metric, a, base, alpha=s.performance_alpha, min_effect=s.performance_min_effect
                )
            except ValueError as exc:
                return _untestable(summary, exc, n=n, lo=lo, hi=hi)
            summary["evidence"] = found.to_dict()
            breach, decisive, status = found.is_breach, found.is_decisive, found.status
            threshold = found.min_effect
            details.update(
                test=found.test, p_val=found.p_val, effect=found.effect, min_effect=found.min_effect,
                alpha=found.alpha, baseline=found.baseline, decisive=decisive,
            )  # fmt: skip
            head = f"Performance of {name} version {version} degraded: " if breach else ""
            summary["message"] = head + found.summary
    else:
        compared = _tolerance(metric, metrics, ctx.reference, s.performance_tolerance, n)
        summary["performance"] = compared.to_dict() if compared else None
        if compared is None:
            summary["message"] = f"{metric} {value:.4f}; no reference {metric} to compare with"
        else:
            breach, status, threshold = compared.is_drift, compared.status, compared.threshold
            summary["message"] = (
                f"Performance of {name} version {version} degraded: {metric} {value:.4f} vs reference "
                f"{compared.reference:.4f} (worst acceptable {compared.threshold:.4f})"
                if breach
                else f"{metric} {value:.4f} within tolerance of reference {compared.reference:.4f}"
            )
            details.update(reference=compared.reference, threshold=compared.threshold)
    run = new_run(status=status, n_rows=data.n_rows, start=lo, end=hi, summary=summary, is_breach=breach)
    details["window"] = {"start": run.window_start.isoformat(), "end": run.window_end.isoformat()}
    result = FeatureResult(
        run_id=0, feature=metric, kind="metric", method=str(details.get("test", "performance"))[:40],
        statistic=finite(value),
        threshold=finite(threshold), p_val=finite(details.get("p_val")), is_drift=breach, status=status,
    )  # fmt: skip
    return Outcome(run, [result], summary["message"], details, decisive=decisive)


def _untestable(summary: dict[str, Any], exc: ValueError, *, n: int, lo: datetime, hi: datetime) -> Outcome:
    """A window the metric's test cannot judge says why and counts as no evidence (never a crash)."""
    summary["message"] = f"{summary['metric']} cannot be tested on this window: {exc}"
    return Outcome(new_run(status="insufficient_data", n_rows=n, start=lo, end=hi, summary=summary))


def _tolerance(
    metric: str, metrics: dict[str, float], reference: dict[str, float] | None, tolerance: float, n: int
) -> PerformanceResult | None:
    if not reference or metric not in reference or metric not in metrics:
        return None
    assert metric in HIGHER_IS_BETTER + LOWER_IS_BETTER
    return compare_performance(
        metrics, reference, metric=metric, tolerance=tolerance, relative=metric in ("rmse", "mae"),
        n_current=n,
    )  # fmt: skip


__all__ = ["Context", "all_metrics", "guessed_task", "outcome"]
