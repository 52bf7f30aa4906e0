"""Daily rollups of the prediction log: per model, version and UTC day, what survives retention.

A rollup holds the day's prediction count, labeled count, latency percentiles and the prediction
distribution (class counts, or quantiles of a numeric output). It is computed from the raw rows of a
complete day and recomputed while labels may still arrive (`RECOMPUTE_DAYS`); once retention deletes rows
of the day it is `final` and never recomputed from what is left.

Bounded memory whatever the day's size: latencies go into a fixed log-spaced histogram (percentiles within
about 1.2 % of the exact ones), classes into a capped counter, numeric outputs into a uniform sample of
`SAMPLE` positions drawn up front from the day's count.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa

from service.codec import dumps
from service.db.lifecycle_tables import PredictionRollup
from service.db.tables import Feedback, Prediction, utcnow

P = Prediction.__table__  # type: ignore[attr-defined]
F = Feedback.__table__  # type: ignore[attr-defined]
R = PredictionRollup.__table__  # type: ignore[attr-defined]
CHUNK_ROWS = 20_000
RECOMPUTE_DAYS = 2  # the last complete days are recomputed: their labels are still arriving
SAMPLE = 10_000
MAX_CLASSES = 50
_TRACKED_CLASSES = 1000
# latency histogram: 1 microsecond .. 1000 s, 100 bins a decade (bin width 2.3 %)
EDGES = np.logspace(-3, 6, 9 * 100 + 1)
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def histogram_quantile(counts: np.ndarray, q: float) -> float | None:
    """The q-quantile of values binned on EDGES (the geometric middle of the bin holding that rank)."""
    total = int(counts.sum())
    if total == 0:
        return None
    i = int(np.searchsorted(np.cumsum(counts), max(1, math.ceil(q * total))))
    return float(math.sqrt(EDGES[i] * EDGES[i + 1]))


@dataclass
class DayStats:
    """Accumulates one version-day chunk by chunk."""

    expected: int
    seed: int = 0
    predictions: int = 0
    labeled: int = 0
    latency_counts: np.ndarray = field(default_factory=lambda: np.zeros(len(EDGES) - 1, np.int64))
    latency_min: float | None = None
    latency_max: float | None = None
    classes: Counter[str] = field(default_factory=Counter)
    classes_overflow: bool = False
    numeric: list[float] = field(default_factory=list)
    non_numeric: bool = False
    fractional: bool = False
    with_probabilities: bool = False

    def __post_init__(self) -> None:
        n = max(self.expected, 1)
        rng = np.random.default_rng(self.seed)
        self._picks = np.sort(rng.choice(n, min(SAMPLE, n), replace=False))

    def add(self, rows: list[Any]) -> None:
        start = self.predictions
        latencies = np.clip(np.array([r[0] for r in rows], np.float64), EDGES[0], EDGES[-1])
        self.latency_counts += np.histogram(latencies, EDGES)[0]
        top, bottom = float(max(r[0] for r in rows)), float(min(r[0] for r in rows))
        self.latency_max = top if self.latency_max is None else max(self.latency_max, top)
        self.latency_min = bottom if self.latency_min is None else min(self.latency_min, bottom)
        outputs = orjson.loads("[" + ",".join(r[1] for r in rows) + "]")
        self.with_probabilities |= any(r[2] is not None for r in rows)
        self.labeled += sum(1 for r in rows if r[3])
        lo, hi = np.searchsorted(self._picks, [start, start + len(rows)])
        for i in (self._picks[lo:hi] - start).tolist():
            value = outputs[i]
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.numeric.append(float(value))
        for value in outputs:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.non_numeric = True
            elif isinstance(value, float) and not value.is_integer():
                self.fractional = True
            key = value if isinstance(value, str) else dumps(value)
            if key in self.classes or len(self.classes) < _TRACKED_CLASSES:
                self.classes[key] += 1
            else:
                self.classes_overflow = True
        self.predictions += len(rows)

    def latency(self, q: float) -> float | None:
        """A latency percentile from the histogram, within the observed range."""
        value = histogram_quantile(self.latency_counts, q)
        if value is None or self.latency_min is None or self.latency_max is None:
            return value
        return min(max(value, self.latency_min), self.latency_max)

    def outputs(self) -> dict[str, Any]:
        """Class counts for labels-like outputs, quantiles for numeric ones."""
        few = not self.classes_overflow and len(self.classes) <= MAX_CLASSES
        if (
            self.numeric
            and not self.non_numeric
            and not self.with_probabilities
            and (self.fractional or not few)
        ):
            values = np.array(self.numeric)
            return {
                "kind": "numeric",
                "mean": float(values.mean()),
                "quantiles": {str(q): float(np.quantile(values, q)) for q in QUANTILES},
                "sampled": len(values),
            }
        top = self.classes.most_common(MAX_CLASSES)
        other = sum(self.classes.values()) - sum(c for _, c in top)
        counts = dict(top)
        if other or self.classes_overflow:
            counts["__other__"] = other
        return {"kind": "classes", "counts": counts, "complete": not self.classes_overflow}


def compute_day(conn: sa.Connection, model_name: str, model_version: str, day: date) -> DayStats:
    """One version-day's statistics from its raw rows, read in chunks."""
    start, end = day_bounds(day)
    where = sa.and_(
        P.c.model_name == model_name,
        P.c.model_version == model_version,
        P.c.created_at >= start,
        P.c.created_at < end,
    )
    expected = int(conn.execute(sa.select(sa.func.count()).select_from(P).where(where)).scalar_one())
    stats = DayStats(expected, seed=day.toordinal())
    labeled = F.c.prediction_id.isnot(None)
    stmt = (
        sa.select(P.c.latency_ms, P.c.output, P.c.probabilities, labeled)
        .select_from(P.outerjoin(F, F.c.prediction_id == P.c.id))
        .where(where)
        .order_by(P.c.created_at, P.c.id)
    )
    # statement options: Connection.execution_options would change the caller's connection for good
    result = conn.execute(stmt.execution_options(stream_results=True, yield_per=CHUNK_ROWS))
    for rows in result.partitions(CHUNK_ROWS):
        stats.add(list(rows))
    return stats


def store_day(conn: sa.Connection, model_name: str, model_version: str, day: date, stats: DayStats) -> None:
    """Insert or replace the rollup (never a final one)."""
    values = {
        "predictions": stats.predictions,
        "labeled": stats.labeled,
        "latency_p50": stats.latency(0.5),
        "latency_p95": stats.latency(0.95),
        "latency_p99": stats.latency(0.99),
        "latency_max": stats.latency_max,
        "outputs": dumps(stats.outputs()),
        "computed_at": utcnow(),
    }
    key = (R.c.model_name == model_name, R.c.model_version == model_version, R.c.day == day)
    existing = conn.execute(sa.select(R.c.id, R.c.final).where(*key)).first()
    if existing is None:
        conn.execute(
            sa.insert(R).values(
                model_name=model_name, model_version=model_version, day=day, final=False, **values
            )
        )
    elif not existing.final:
        conn.execute(sa.update(R).where(R.c.id == existing.id).values(**values))


def roll_up(conn: sa.Connection, model_name: str, model_version: str, day: date) -> None:
    """Compute and store one version-day (the caller owns the transaction)."""
    store_day(conn, model_name, model_version, day, compute_day(conn, model_name, model_version, day))


def pending_days(
    conn: sa.Connection, today: date, models: Collection[str] | None = None
) -> list[tuple[str, str, date]]:
    """Complete version-days without a rollup, plus the last `RECOMPUTE_DAYS` ones not yet final.

    The log is scanned once per run for its version-days (GROUP BY on the day of created_at would not use
    an index either way); rows of today are never rolled up.
    """
    first_of_today = day_bounds(today)[0]
    spans = conn.execute(
        sa.select(P.c.model_name, P.c.model_version, sa.func.min(P.c.created_at), sa.func.max(P.c.created_at))
        .where(P.c.created_at < first_of_today, *([P.c.model_name.in_(models)] if models is not None else []))
        .group_by(P.c.model_name, P.c.model_version)
    ).all()
    done = {
        (r.model_name, r.model_version, r.day): r.final
        for r in conn.execute(sa.select(R.c.model_name, R.c.model_version, R.c.day, R.c.final))
    }
    recompute_from = today - timedelta(days=RECOMPUTE_DAYS)
    out: list[tuple[str, str, date]] = []
    for name, version, lo, hi in spans:
        day, last = _as_utc(lo).date(), _as_utc(hi).date()
        while day <= last:
            final = done.get((name, version, day))
            if final is None or (not final and day >= recompute_from):
                out.append((name, version, day))
            following = _next_time(conn, name, version, day_bounds(day)[1])
            if following is None:
                break
            day = _as_utc(following).date()  # days without traffic get no rollup
    return out


def _next_time(conn: sa.Connection, model_name: str, model_version: str, at: datetime) -> datetime | None:
    """The version's first prediction time at or after `at` (one index seek)."""
    stmt = (
        sa.select(P.c.created_at)
        .where(P.c.model_name == model_name, P.c.model_version == model_version, P.c.created_at >= at)
        .order_by(P.c.created_at)
        .limit(1)
    )
    value: datetime | None = conn.execute(stmt).scalar_one_or_none()
    return value


def _as_utc(value: datetime | str) -> datetime:
    # min/max through a bare aggregate skip the column type on SQLite (text comes back)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def run_rollups(
    engine: sa.Engine, *, now: datetime | None = None, models: Collection[str] | None = None
) -> int:
    """Every pending version-day (of `models`, default all) in its own short transaction; returns how many."""
    today = (now or utcnow()).astimezone(UTC).date()
    with engine.connect() as conn:
        pending = pending_days(conn, today, models)
    for name, version, day in pending:
        with engine.begin() as conn:
            roll_up(conn, name, version, day)
    return len(pending)
