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

import orjson
import sqlalchemy as sa
from sqlmodel import Session, col, select

from detectors.importance import ModelImportance
from service.config import Settings
from service.db.tables import DriftRun, utcnow
from service.monitor import catchup, drift, estimated, performance, pooling, windows
from service.monitor.estimators import estimators_for
from service.monitor.reader import read_drift_window, read_labeled_window
from service.monitor.references import ReferenceSource, StoredReference, load_reference
from service.monitor.store import Outcome, find_run, new_run, save

log = logging.getLogger("driftloop.monitor")

ChampionVersion = Callable[[str], str | None]


class NoTraffic(LookupError):
    """No model version to check: no champion and no logged prediction."""


@dataclass(frozen=True)
class ManualWindow:
    start: datetime | None = None
    end: datetime | None = None
    last_n: int | None = None


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
        self._frontiers: dict[str, int] = {}  # per window series: every window below is checked
        self._tasks: dict[tuple[str, str], str | None] = {}  # versions whose stored reference has no task

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
        """Check the due, not yet checked windows of the current version in order (the scheduled job):
        at most `window_checks_per_tick`, the rest at the next tick (see monitor/catchup.py)."""
        version = self.version()
        if version is None:
            return []
        s = self.settings
        with self.engine.connect() as conn:
            due = catchup.due_windows(
                conn,
                kind=kind,
                model_name=s.model_name,
                model_version=version,
                mode=s.window_kind,
                rows=s.window_rows if kind == "drift" else s.performance_window_rows,
                seconds=s.window_seconds,
                now=utcnow(),
                limit=s.window_checks_per_tick,
                latest=s.breach_m if s.window_backlog == "latest" else None,
                frontiers=self._frontiers,
            )
        if due.backlog:
            log.info("%s %s v%s: %d windows wait for the next tick", kind, s.model_name, version, due.backlog)
        # in order: a window's episode transition sees every earlier window's run
        return [self.check(window, trigger="schedule") for window in due.windows]

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
                state=self._frontiers,
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
        if window.kind == "drift" and self.settings.estimated_performance:
            self._estimated(window, trigger)
        return stored

    def _estimated(self, window: windows.Window, trigger: str) -> None:
        """The window's label-free performance estimate (monitor/estimated.py); its failure never
        undoes or stops the drift check."""
        try:
            estimated.check_estimated(
                self.engine, self.settings, window, trigger=trigger, references=self.references
            )
        except Exception:
            log.exception("estimated performance of window %s failed", window.key)

    def _importance(self, ref: StoredReference) -> ModelImportance | None:
        try:
            found = estimators_for(self.engine, ref, self.references)
        except Exception:  # root cause is extra: the drift run stands without it
            log.exception("importance of %s v%s unavailable", ref.model_name, ref.model_version)
            return None
        return found.importance if found is not None else None

    # ----- the two checks -----------------------------------------------------------------------------

    def _reference(self, window: windows.Window) -> StoredReference | None:
        return load_reference(
            self.engine,
            model_name=window.model_name,
            model_version=window.model_version,
            registry=self.references,
            target=self.settings.target_column or None,
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
        run = new_run(status=status, n_rows=n, start=lo, end=hi, summary=summary)
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
        cause = drift.root_cause(self._importance(ref), result)
        t_end = time.perf_counter()
        timings = {"read": (t_decide - t_read) * 1000.0, "decide": (t_end - t_decide) * 1000.0}
        return drift.outcome(ref, prof, result, data, window, lo=lo, hi=hi, timings_ms=timings, cause=cause)

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
        return performance.outcome(data, window, s, self._context(window), n=n, lo=lo, hi=hi)

    def _task(self, window: windows.Window, ref: StoredReference | None) -> str | None:
        """The stored task, else the model's (read once per version and process), else None."""
        if ref is not None and ref.task:
            return ref.task
        key = (window.model_name, window.model_version)
        task_of = getattr(self.references, "task", None)
        if key not in self._tasks and task_of is not None:
            self._tasks[key] = task_of(*key)
        return self._tasks.get(key)

    def _context(self, window: windows.Window) -> performance.Context:
        """The model's task, the baseline carried by the version's last check (else its stored one) and
        when the window's rows were predicted (a retrain after a change trains from there)."""
        try:
            ref = self._reference(window)
        except Exception as exc:  # the registry being down must not stop performance monitoring
            log.warning("reference of %s v%s unavailable: %s", window.model_name, window.model_version, exc)
            ref = None
        held_out = ref.profile.reference_performance if ref else None
        reference = dict(held_out) if held_out else None
        state = pooling.initial(ref.baseline if ref else None)
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
                .order_by(col(DriftRun.window_end).desc(), col(DriftRun.id).desc())
                .limit(1)
            )
            last = session.exec(stmt).first()
        if last is not None:
            state = orjson.loads(last.summary).get("baseline_next") or state
        with self.engine.connect() as conn:
            rows = windows.select_window(window, [windows.P.c.created_at.label("t")]).subquery()
            first = conn.execute(sa.select(sa.func.min(rows.c.t))).scalar_one_or_none()
        return performance.Context(
            task=self._task(window, ref),
            state=state,
            reference=reference,
            source="reference_profile" if reference else "none",
            predicted_from=first,
        )
