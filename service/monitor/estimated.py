"""Estimated performance (kind `estimated_performance`): every drift window of a version with a fitted
CBPE (classifier with logged probabilities) or DLE (numeric regressor), before any label arrives.

The run reads the same rows as the window's drift run (its key is the drift key under this kind), estimates
the watched metric with its band, and breaches by `detectors.estimated.estimated_breach`: worse than the
estimator's baseline by at least `estimated_min_effect` and a one-sided z-test below `estimated_alpha`.
Episodes follow the rule of realized performance (service/monitor/episodes.py): K of M breaching
windows, or one window whose evidence is overwhelming (`strong`: p < 1e-6 and three minimum effects). Every
run carries the honest limits sentence: the estimate cannot see concept drift, labels stay the judge.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from detectors.confusion import METRICS as CBPE_METRICS
from detectors.estimated import EstimatedPerformance, estimated_breach
from service.config import Settings
from service.db.tables import DriftRun, FeatureResult, utcnow
from service.monitor import windows
from service.monitor.estimators import VersionEstimators, estimators_for
from service.monitor.reader import parse_json_column, stream
from service.monitor.references import StoredReference, load_reference
from service.monitor.store import Outcome, find_run, finite, new_run, save

log = logging.getLogger("driftloop.monitor")

KIND = "estimated_performance"
STRONG_P, STRONG_FACTOR = 1e-6, 3.0


def estimated_window(window: windows.Window) -> windows.Window:
    """The drift window under this kind's key; its rows (kind `drift`: by `seq`) are read unchanged."""
    rest = window.key.split(":", 1)[1] if ":" in window.key else window.key
    return replace(window, key=windows.make_key(KIND, rest))


def watched(settings: Settings, est: VersionEstimators) -> str:
    """The watched metric when estimated (`performance_metric`), else accuracy (CBPE) / rmse (DLE)."""
    names, default = (("mae", "rmse"), "rmse") if est.cbpe is None else (CBPE_METRICS, "accuracy")
    return settings.performance_metric if settings.performance_metric in names else default


def read_window(
    engine: sa.Engine, window: windows.Window, *, features: bool
) -> tuple[list[Any], list[Any], list[Any]]:
    """Outputs, probabilities and (for DLE) feature records of the window's rows."""
    P = windows.P
    cols = [P.c.output, P.c.probabilities, *([P.c.features] if features else [])]
    outputs: list[Any] = []
    probas: list[Any] = []
    records: list[Any] = []
    for chunk in stream(engine, windows.select_window(window, cols)):
        outputs.extend(parse_json_column([r[0] for r in chunk]))
        probas.extend(parse_json_column([r[1] for r in chunk]))
        if features:
            records.extend(parse_json_column([r[2] for r in chunk]))
    return outputs, probas, records


def estimate(
    est: VersionEstimators, outputs: list[Any], probas: list[Any], records: list[Any], min_rows: int
) -> EstimatedPerformance | str:
    """The window's estimate, or why there is none (a sentence)."""
    if est.cbpe is not None:
        classes = est.cbpe.classes
        keys = [str(c) for c in classes]
        if any(not isinstance(p, dict) or any(k not in p for k in keys) for p in probas):
            return f"the window's predictions lack probabilities of the classes {keys}"
        matrix = np.array([[float(p[k]) for k in keys] for p in probas], dtype=np.float64).reshape(
            -1, len(keys)
        )
        by_text = {str(c): c for c in classes}
        try:
            pred = [by_text[str(o)] for o in outputs]
        except KeyError as exc:
            return f"a prediction {exc} is not among the model's classes {keys}"
        proba = matrix[:, 1] if len(classes) == 2 else matrix
        return est.cbpe.estimate(proba, pred, z=3.0, min_rows=min_rows, n_boot=100)
    assert est.dle is not None
    rows = [r if isinstance(r, dict) else {} for r in records]
    X = np.array([[_number(r.get(f)) for f in est.features] for r in rows], dtype=np.float64)
    y = np.array([_number(o) for o in outputs], dtype=np.float64)
    keep = np.isfinite(X).all(axis=1) & np.isfinite(y) if len(rows) else np.zeros(0, dtype=bool)
    return est.dle.estimate(X[keep].reshape(-1, len(est.features)), y[keep], z=3.0, min_rows=min_rows)


def _number(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else float("nan")


def outcome(
    est: VersionEstimators,
    result: EstimatedPerformance | str,
    window: windows.Window,
    settings: Settings,
    *,
    lo: datetime,
    hi: datetime,
    n: int,
) -> Outcome:
    """The stored run: estimate, band, breach decision and the limits sentence."""
    name, version = window.model_name, window.model_version
    summary: dict[str, Any] = {
        "window": window.describe(), "holdout_source": est.holdout_source, "n_holdout": est.n_holdout,
    }  # fmt: skip
    if isinstance(result, str):
        summary.update(message=f"no estimate for {name} version {version}: {result}", status="unavailable")
        summary["limits"] = ""
        return Outcome(new_run(status="insufficient_data", n_rows=n, start=lo, end=hi, summary=summary))
    metric = watched(settings, est)
    summary.update(method=result.method, metric=metric, estimate=result.to_dict(), limits=result.limits)
    if result.status != "estimated":
        summary["message"] = (
            f"{result.n_rows} rows: too few to estimate {metric} (at least {settings.min_window_rows})"
        )
        return Outcome(new_run(status="insufficient_data", n_rows=n, start=lo, end=hi, summary=summary))
    m = result.metric(metric)
    b = estimated_breach(
        m, min_effect=settings.estimated_min_effect, alpha=settings.estimated_alpha,
        strong_p=STRONG_P, strong_factor=STRONG_FACTOR,
    )  # fmt: skip
    summary["breach"] = b.to_dict()
    summary["message"] = (
        f"Estimated performance of {name} version {version} degraded (no labels yet): {b.reason}"
        if b.is_drift
        else f"Estimated {b.reason}"
    )
    run = new_run(status=b.status, n_rows=n, start=lo, end=hi, summary=summary, is_breach=b.is_drift)
    # the line a breach must cross: the baseline less the minimum effect (rmse / mae: relative, above it)
    lower_better = metric in ("mae", "rmse")
    threshold = b.baseline * (1.0 + b.min_effect) if lower_better else b.baseline - b.min_effect
    rows = [
        FeatureResult(
            run_id=0,
            feature=e.metric,
            kind="metric",
            method=result.method,
            statistic=finite(e.value),
            p_val=finite(b.p_val) if e.metric == metric else None,
            threshold=finite(threshold) if e.metric == metric else None,
            is_drift=b.is_drift and e.metric == metric,
            status=b.status if e.metric == metric else "estimated",
        )  # fmt: skip
        for e in result.metrics
    ]
    details = {
        "metric": metric, "estimated": m.value, "lower": m.lower, "upper": m.upper, "baseline": b.baseline,
        "reference": b.reference, "effect": b.effect, "p_val": b.p_val, "strong": b.strong,
        "n_rows": result.n_rows, "limits": result.limits,
        "window": {"start": lo.isoformat(), "end": hi.isoformat()},
    }  # fmt: skip
    # as for realized performance: overwhelming evidence opens the episode on this window alone
    return Outcome(run, rows, summary["message"], details, decisive=b.strong)


def check_estimated(
    engine: sa.Engine,
    settings: Settings,
    drift_window: windows.Window,
    *,
    trigger: str,
    references: object | None,
) -> DriftRun | None:
    """Store the estimated run of a drift window (once per window); None when the version has no
    estimator (no registry, no holdout, no probabilities) or the window was already estimated."""
    window = estimated_window(drift_window)
    if find_run(engine, window.key) is not None:
        return None
    ref: StoredReference | None = load_reference(
        engine, model_name=window.model_name, model_version=window.model_version,
        registry=references,  # type: ignore[arg-type]
    )  # fmt: skip
    est = estimators_for(engine, ref, references) if ref is not None else None
    if est is None or (est.cbpe is None and est.dle is None):
        return None
    started, t0 = utcnow(), time.perf_counter()
    with engine.connect() as conn:
        n = window.limit if window.limit is not None else windows.count_range(conn, window)
        first, last = windows.bounds(conn, window)
    outputs, probas, records = read_window(engine, window, features=est.cbpe is None)
    result = estimate(est, outputs, probas, records, settings.min_window_rows)
    out = outcome(est, result, window, settings, lo=first or started, hi=last or started, n=int(n))
    run = out.run
    run.window_key, run.kind, run.trigger = window.key, KIND, trigger
    run.model_name, run.model_version = window.model_name, window.model_version
    run.started_at, run.finished_at = started, utcnow()
    run.duration_ms = (time.perf_counter() - t0) * 1000.0
    stored, _ = save(engine, settings, out)
    return stored
