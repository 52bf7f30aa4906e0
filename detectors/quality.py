"""Data-quality signals next to drift: missing-rate change, out-of-range values, unseen categories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors.profile import FeatureProfile
from detectors.window import CategoricalSummary, NumericSummary, Summary

MAX_LISTED_UNSEEN = 20


@dataclass(frozen=True)
class Quality:
    """Quality figures of one column in a window and the issues that exceed their tolerances."""

    missing_rate_ref: float
    missing_rate_cur: float
    out_of_range_share: float | None
    unseen_share: float | None
    unseen_categories: tuple[Any, ...]
    issues: tuple[str, ...]


def assess(
    fp: FeatureProfile,
    summary: Summary,
    *,
    missing_rate_tolerance: float = 0.05,
    out_of_range_tolerance: float = 0.01,
    unseen_tolerance: float = 0.01,
) -> Quality:
    """Compare a window's quality with the reference's.

    Issues: ``missing_rate_increase`` (current missing rate above reference + tolerance), ``out_of_range``
    (share of values outside the reference min..max above tolerance), ``unseen_categories`` (share of
    values in categories the reference never saw above tolerance).

    Examples
    --------
    >>> import pandas as pd
    >>> from detectors.window import summarize_categorical
    >>> fp = FeatureProfile.fit_categorical("c", {"a": 90, "b": 10}, n_missing=0)
    >>> q = assess(fp, summarize_categorical(pd.Series(["a", "z", None, "a"])))
    >>> q.missing_rate_cur, q.unseen_share, q.unseen_categories, q.issues
    (0.25, 0.3333333333333333, ('z',), ('missing_rate_increase', 'unseen_categories'))
    """
    total = summary.n + summary.n_missing
    missing_cur = summary.n_missing / total if total else 0.0
    issues = []
    if missing_cur > fp.missing_rate + missing_rate_tolerance:
        issues.append("missing_rate_increase")
    out_of_range = unseen_share = None
    unseen: tuple[Any, ...] = ()
    if isinstance(summary, NumericSummary):
        out_of_range = summary.out_of_range / summary.n if summary.n else 0.0
        if out_of_range > out_of_range_tolerance:
            issues.append("out_of_range")
    elif isinstance(summary, CategoricalSummary):
        known = set(fp.categories)
        new = {k: v for k, v in summary.counts.items() if k not in known}
        unseen_share = sum(new.values()) / summary.n if summary.n else 0.0
        unseen = tuple(sorted(new, key=lambda k: -new[k])[:MAX_LISTED_UNSEEN])
        if unseen_share > unseen_tolerance:
            issues.append("unseen_categories")
    return Quality(fp.missing_rate, missing_cur, out_of_range, unseen_share, unseen, tuple(issues))
