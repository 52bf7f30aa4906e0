"""One version-day's rollup statistics, accumulated chunk by chunk in bounded memory, and saved as JSON
when a run's budget stops the day part-way (`rollup_progress`), so the next run continues it.

Latencies go into a fixed log-spaced histogram (percentiles within about 1.2 % of the exact ones),
classes into a capped counter, numeric outputs into a uniform reservoir sample of `SAMPLE` values
(seeded per chunk: the same rows give the same sample, however the day was split between runs).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from service.codec import dumps

SAMPLE = 10_000
MAX_CLASSES = 50
_TRACKED_CLASSES = 1000
# latency histogram: 1 microsecond .. 1000 s, 100 bins a decade (bin width 2.3 %)
EDGES = np.logspace(-3, 6, 9 * 100 + 1)
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def histogram_quantile(counts: np.ndarray, q: float) -> float | None:
    """The q-quantile of values binned on EDGES (the geometric middle of the bin holding that rank)."""
    total = int(counts.sum())
    if total == 0:
        return None
    i = int(np.searchsorted(np.cumsum(counts), max(1, math.ceil(q * total))))
    return float(math.sqrt(EDGES[i] * EDGES[i + 1]))


@dataclass
class DayStats:
    """Accumulates one version-day; `add` takes rows of (latency_ms, output JSON, probabilities, labeled)."""

    seed: int = 0
    predictions: int = 0
    labeled: int = 0
    latency_counts: np.ndarray = field(default_factory=lambda: np.zeros(len(EDGES) - 1, np.int64))
    latency_min: float | None = None
    latency_max: float | None = None
    classes: Counter[str] = field(default_factory=Counter)
    classes_overflow: bool = False
    numeric: list[float] = field(default_factory=list)  # the reservoir
    numeric_seen: int = 0
    non_numeric: bool = False
    fractional: bool = False
    with_probabilities: bool = False

    def add(self, rows: list[Any]) -> None:
        latencies = np.clip(np.array([r[0] for r in rows], np.float64), EDGES[0], EDGES[-1])
        self.latency_counts += np.histogram(latencies, EDGES)[0]
        top, bottom = float(max(r[0] for r in rows)), float(min(r[0] for r in rows))
        self.latency_max = top if self.latency_max is None else max(self.latency_max, top)
        self.latency_min = bottom if self.latency_min is None else min(self.latency_min, bottom)
        outputs = orjson.loads("[" + ",".join(r[1] for r in rows) + "]")
        self.with_probabilities |= any(r[2] is not None for r in rows)
        self.labeled += sum(1 for r in rows if r[3])
        numbers: list[float] = []
        for value in outputs:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.non_numeric = True
            else:
                numbers.append(float(value))
                if isinstance(value, float) and not value.is_integer():
                    self.fractional = True
            key = value if isinstance(value, str) else dumps(value)
            if key in self.classes or len(self.classes) < _TRACKED_CLASSES:
                self.classes[key] += 1
            else:
                self.classes_overflow = True
        self._sample(numbers)
        self.predictions += len(rows)

    def _sample(self, numbers: list[float]) -> None:
        """Reservoir sampling (algorithm R): the t-th value replaces a random slot with chance SAMPLE/t."""
        fill = max(0, min(SAMPLE - len(self.numeric), len(numbers)))
        self.numeric.extend(numbers[:fill])
        rest = numbers[fill:]
        if rest:
            positions = np.arange(self.numeric_seen + fill, self.numeric_seen + len(numbers))
            slots = np.random.default_rng([self.seed, self.numeric_seen]).integers(0, positions + 1)
            for i in np.flatnonzero(slots < SAMPLE).tolist():
                self.numeric[int(slots[i])] = rest[i]
        self.numeric_seen += len(numbers)

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

    def to_state(self) -> str:
        bins = np.flatnonzero(self.latency_counts)
        state = {
            "seed": self.seed, "predictions": self.predictions, "labeled": self.labeled,
            "latency": [[int(i), int(self.latency_counts[i])] for i in bins],
            "latency_min": self.latency_min, "latency_max": self.latency_max,
            "classes": dict(self.classes), "classes_overflow": self.classes_overflow,
            "numeric": self.numeric, "numeric_seen": self.numeric_seen, "non_numeric": self.non_numeric,
            "fractional": self.fractional, "with_probabilities": self.with_probabilities,
        }  # fmt: skip
        return orjson.dumps(state).decode()

    @classmethod
    def from_state(cls, text: str) -> DayStats:
        state = orjson.loads(text)
        counts = np.zeros(len(EDGES) - 1, np.int64)
        for i, c in state.pop("latency"):
            counts[i] = c
        classes: Counter[str] = Counter(state.pop("classes"))
        return cls(latency_counts=counts, classes=classes, **state)
