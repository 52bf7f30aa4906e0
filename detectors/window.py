"""One pass over a current window: per-feature summaries that every statistic is computed from.

A summary is small (cell counts or category counts) and independent of the reference size; summaries of
disjoint chunks of a window can be added, so a service can summarize as rows arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.columns import Column, FloatArray, IntArray, as_float, value_counts
from detectors.profile import FeatureProfile


@dataclass(frozen=True, eq=False)
class NumericSummary:
    """Cell counts of the non-missing values on the reference's edges, plus the out-of-range tail sums.

    ``values`` holds the raw non-missing values when the window is small enough for exact tests.
    """

    n: int
    n_missing: int
    counts: IntArray
    low_tail: float
    high_tail: float
    values: FloatArray | None = None

    @property
    def out_of_range(self) -> int:
        """Values below the reference minimum or above its maximum."""
        return int(self.counts[0] + self.counts[-1]) if self.counts.size else 0


@dataclass(frozen=True, eq=False)
class CategoricalSummary:
    """Counts of the non-missing values of a categorical column."""

    n: int
    n_missing: int
    counts: dict[Any, int]


Summary = NumericSummary | CategoricalSummary


def summarize_numeric(fp: FeatureProfile, values: FloatArray, keep_values_up_to: int = 0) -> NumericSummary:
    """Summarize numeric values (NaN = missing) against a numeric feature profile.

    Examples
    --------
    >>> fp = FeatureProfile.fit_numeric("x", np.arange(10.0), n_bins=2)
    >>> s = summarize_numeric(fp, np.array([-1.0, 4.5, 20.0, np.nan]))
    >>> s.n, s.n_missing, s.out_of_range, s.low_tail, s.high_tail
    (3, 1, 2, 1.0, 11.0)
    """
    missing = np.isnan(values)
    n_missing = int(missing.sum())
    present = values[~missing] if n_missing else values
    counts = fp.cell_index.counts(present)
    low_tail = high_tail = 0.0
    if fp.edges.size and (counts[0] or counts[-1]):
        low, high = fp.edges[0], fp.edges[-1]
        low_tail = float(np.sum(low - present[present < low])) if counts[0] else 0.0
        high_tail = float(np.sum(present[present > high] - high)) if counts[-1] else 0.0
    kept = present if present.size <= keep_values_up_to else None
    return NumericSummary(int(present.size), n_missing, counts, low_tail, high_tail, kept)


def summarize_categorical(series: Column) -> CategoricalSummary:
    """Summarize a categorical column.

    Examples
    --------
    >>> s = summarize_categorical(np.array(["a", "b", "a", None], dtype=object))
    >>> s.n, s.n_missing, sorted(s.counts.items())
    (3, 1, [('a', 2), ('b', 1)])
    """
    counts = value_counts(series)
    n = sum(counts.values())
    return CategoricalSummary(n, int(len(series) - n), counts)


def summarize(fp: FeatureProfile, series: Column, keep_values_up_to: int = 0) -> Summary:
    """Summarize one current column against its feature profile."""
    if fp.kind == "numeric":
        return summarize_numeric(fp, as_float(series, fp.name), keep_values_up_to)
    return summarize_categorical(series)


def aligned_counts(fp: FeatureProfile, summary: CategoricalSummary) -> tuple[IntArray, IntArray, list[Any]]:
    """Reference and current counts over the union of categories (reference order, then unseen ones)."""
    unseen = [c for c in summary.counts if c not in set(fp.categories)]
    keys = [*fp.categories, *unseen]
    ref = np.concatenate((fp.category_counts, np.zeros(len(unseen), dtype=np.int64)))
    cur = np.array([summary.counts.get(k, 0) for k in keys], dtype=np.int64)
    return ref, cur, unseen
