"""The monitor: which version and windows to check, computing a run, storing it.

A window only holds traffic of one model version: the champion (from `champion_version`), or the version
of the latest prediction when the registry cannot say.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, col, select

from detectors.results import jsonable
from service.config import Settings
from service.models import DriftRun, FeatureResult, utcnow
from service.monitor import drift, performance, windows
from service.monitor.reader import read_drift_window, read_labeled_window
from service.monitor.store import Outcome, find_run, save
from service.references import ReferenceSource, StoredReference, load_reference

log = logging.getLogger("driftloop.monitor")

ChampionVersion = Callable[[str], str | None]


class NoTraffic(LookupError):
    """No model version to check: no champion and no logged prediction."""


@dataclass(frozen=True)
class ManualWindow:
    start: datetime | None = None
    end: datetime | None = None
    last_n: int | None = None


def _dumps(value: Any) -> str:
    return orjson.dumps(jsonable(value), option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _float(value: float | None) -> float | None:
    return None if value is None or value != value or value in (float("inf"), float("-inf")) else float(value)


class Monitor:
    def __init__(
        self,
        settings: Settings,
        engine: sa.Engine,
        *,
        champion_version: ChampionVersion | None = None,
        references: ReferenceSource | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.champion_version = champion_version
        self.references = references

    # ----- which version, which windows ----------------------------------------------------------------

    def version(self) -> str | None:
        name = self.settings.model_name
        if self.champion_version is not None:
            try:
                found = self.champion_version(name)
                if found:
                    return found
            except Exception as exc:
                log.warning("champion of %s unknown (%s); checking the latest served version", name, exc)
        with self.engine.connect() as conn:
            return windows.latest_version(conn, name)

    def run_due(self, kind: str) -> list[DriftRun]:
        """Check every due, not yet checked window of the current version (the scheduled job)."""
        version = self.version()
        if version is None:
            return []
        s = self.settings
        with self.engine.connect() as conn:
            due = windows.due_windows(
                conn,
                kind=kind,
                model_name=s.model_name,
                model_version=version,
                mode=s.window_kind,
                rows=s.window_rows if kind == "drift" else s.performance_window_rows,
                seconds=s.window_seconds,
                catchup=s.breach_m,
                now=utcnow(),
            )
        runs = []
        for window in due:
            if find_run(self.engine, window.key) is None:
                runs.append(self.check(window, trigger="schedule"))
        return runs

    def check_now(self, kind: str, manual: ManualWindow, version: str | None = None) -> DriftRun:
        """A check asked for by a person; the same window asked twice returns the same run."""
        version = version or self.version()
        if version is None:
            raise NoTraffic(f"model {self.settings.model_name!r} has no champion and no logged predictions")
        with self.engine.connect() as conn:
            window = windows.manual_window(
                conn,
                kind=kind,
                model_name=self.settings.model_name,
                model_version=version,
                start=manual.start,
                end=manual.end,
                last_n=manual.last_n,
                default_rows=self.settings.window_rows,
            )
        return self.check(window, trigger="manual")

    def check(self, window: windows.Window, *, trigger: str) -> DriftRun:
        existing = find_run(self.engine, window.key)
        if existing is not None:
            return existing
        started, t0 = utcnow(), time.perf_counter()
        outcome = self._drift(window) if window.kind == "drift" else self._performance(window)
        run = outcome.run
        run.window_key, run.kind, run.trigger = window.key, window.kind, trigger
        run.model_name, run.model_version = window.model_name, window.model_version
        run.started_at, run.finished_at = started, utcnow()
        run.duration_ms = (time.perf_counter() - t0) * 1000.0
        stored, _ = save(self.engine, self.settings, outcome)
        return stored

    # ----- the two checks -----------------------------------------------------------------------------

    def _reference(self, window: windows.Window) -> StoredReference | None:
        return load_reference(
            self.engine,
            model_name=window.model_name,
            model_version=window.model_version,
            registry=self.references,
        )

    def _counted(self, window: windows.Window) -> tuple[int, datetime, datetime]:
        with self.engine.connect() as conn:
            n = window.limit if window.limit is not None else windows.count_range(conn, window)
            lo, hi = windows.bounds(conn, window)
        now = utcnow()
        return int(n), lo or now, hi or now

    def _empty(self, window: windows.Window, status: str, message: str) -> Outcome:
        n, lo, hi = self._counted(window)
        summary = {"message": message, "window": window.describe()}
        run = _new_run(status=status, n_rows=n, start=lo, end=hi, summary=summary)
        return Outcome(run)

    def _drift(self, window: windows.Window) -> Outcome:
        s = self.settings
        ref = self._reference(window)
        name, version = window.model_name, window.model_version
        if ref is None:
            return self._empty(
                window,
                "no_reference",
                f"model {name} version {version} has no reference data, so drift cannot be measured; "
                f"attach its training data with `driftloop reference set {version} <file>`",
            )
        n, lo, hi = self._counted(window)
        if n < s.min_window_rows:
            return self._empty(
                window, "insufficient_data", f"{n} rows in the window; at least {s.min_window_rows} needed"
            )
        prof = drift.with_prediction_profile(ref)
        opts = drift.check_options(s)
        t_read = time.perf_counter()
        data = read_drift_window(
            self.engine,
            window,
            features=prof.profile.features,
            prediction=prof.prediction,
            expected_rows=n,
            keep_values_up_to=opts.exact_max_rows if prof.profile.sample_complete else 0,
            sample_rows=opts.multivariate_max_rows // 2,
            seed=opts.seed,
        )
        t_decide = time.perf_counter()
        result = drift.decide(prof, data, opts)
        t_end = time.perf_counter()
        breach = drift.is_breach(result)
        drifted = [f for f in result.features if f.is_drift]
        detail_features = [
            {
                "feature": f.name,
                "method": f.method,
                "statistic": _float(f.statistic),
                "p_val": _float(f.p_val),
                "threshold": f.threshold,
                "excess": drift.excess(f),
            }
            for f in (*drifted, *[p for p in result.predictions if p.is_drift])
        ]
        names = ", ".join(f.name for f in drifted) or "no single feature"
        headline = (
            f"Drift on {name} version {version}: {names} drifted "
            f"({len(drifted)} of {len(result.features)} features, share {result.drift_share:.2f})"
            + ("; predictions drifted" if result.prediction_drift else "")
            + (
                f"; domain classifier AUC {result.multivariate.auc:.2f}"
                if result.multivariate is not None and result.multivariate.is_drift
                else ""
            )
        )
        details = {
            "window": {"start": lo.isoformat(), "end": hi.isoformat()},
            "n_rows": data.n_rows,
            "drift_share": result.drift_share,
            "drift_share_threshold": result.drift_share_threshold,
            "dataset_drift": result.dataset_drift,
            "prediction_drift": result.prediction_drift,
            "drifted": detail_features,
        }
        summary = {
            **result.to_dict(),
            "message": headline if breach else f"No drift on {name} version {version}",
            "window": window.describe(),
            "reference": {"source": ref.source, "n_rows": ref.profile.n_rows},
            "prediction_reference": prof.prediction_source,
            "is_breach": breach,
            "timings_ms": {
                "read": (t_decide - t_read) * 1000.0,
                "decide": (t_end - t_decide) * 1000.0,
            },
        }
        run = _new_run(
            status=result.status,
            n_rows=data.n_rows,
            start=lo,
            end=hi,
            summary=summary,
            dataset_drift=result.dataset_drift,
            drift_share=result.drift_share,
            is_breach=breach,
        )
        features = [
            FeatureResult(
                run_id=0,
                feature=f.name,
                kind=f.kind if f.role == "feature" else "prediction",
                method=f.method,
                statistic=_float(f.statistic),
                p_val=_float(f.p_val),
                threshold=_float(f.threshold),
                is_drift=f.is_drift,
                status=f.status,
            )
            for f in (*result.features, *result.predictions)
        ]
        return Outcome(run, features, headline, details)

    def _performance(self, window: windows.Window) -> Outcome:
        s = self.settings
        n, lo, hi = self._counted(window)
        if n < s.min_window_rows:
            return self._empty(
                window,
                "insufficient_data",
                f"{n} labeled rows in the window; at least {s.min_window_rows} needed",
            )
        data = read_labeled_window(self.engine, window)
        current = performance.realized(data, s.performance_metric)
        reference, source = self._reference_performance(window)
        compared = (
            performance.compare(current, reference, s.performance_tolerance, n_rows=n) if reference else None
        )
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
            summary["message"] = (
                f"{metric} {value:.4f} within tolerance of reference {compared.reference:.4f}"
            )
        breach = bool(compared is not None and compared.is_drift)
        run = _new_run(
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
            statistic=_float(value),
            threshold=_float(compared.threshold) if compared else None,
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

    def _reference_performance(self, window: windows.Window) -> tuple[dict[str, float] | None, str]:
        try:
            ref = self._reference(window)
        except Exception as exc:  # the registry being down must not stop performance monitoring
            log.warning("reference of %s v%s unavailable: %s", window.model_name, window.model_version, exc)
            ref = None
        if ref is not None and ref.profile.reference_performance:
            return dict(ref.profile.reference_performance), "reference_profile"
        with Session(self.engine) as session:
            stmt = (
                select(DriftRun)
                .where(
                    DriftRun.kind == "performance",
                    DriftRun.model_name == window.model_name,
                    DriftRun.model_version == window.model_version,
                    DriftRun.trigger == "schedule",
                    col(DriftRun.status).in_(("drift", "no_drift")),
                )
                .order_by(col(DriftRun.window_end), col(DriftRun.id))
            )
            for row in session.exec(stmt):
                summary = orjson.loads(row.summary)
                if summary.get("baseline"):
                    return dict(summary["metrics"]), f"baseline_run:{row.id}"
        return None, "none"


def _new_run(
    *,
    status: str,
    n_rows: int,
    start: datetime,
    end: datetime,
    summary: dict[str, Any],
    dataset_drift: bool = False,
    drift_share: float = 0.0,
    is_breach: bool = False,
) -> DriftRun:
    now = utcnow()
    return DriftRun(
        window_key="",
        kind="",
        model_name="",
        model_version="",
        window_start=start,
        window_end=end,
        n_rows=n_rows,
        status=status,
        dataset_drift=dataset_drift,
        drift_share=drift_share if drift_share == drift_share else 0.0,
        is_breach=is_breach,
        summary=_dumps(summary),
        started_at=now,
        finished_at=now,
    )
