"""Per-feature results of one family of tests (inputs, or predictions), corrected together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from detectors.correction import correct
from detectors.measure import Measurement, measure
from detectors.missing import MissingTest, missing_test
from detectors.noise_floor import noise_floor
from detectors.options import CheckOptions
from detectors.profile import FeatureProfile, ReferenceProfile
from detectors.quality import assess
from detectors.results import FeatureDriftResult
from detectors.select import default_method, is_p_value
from detectors.window import CategoricalSummary, Summary


def _method_for(fp: FeatureProfile, summary: Summary, options: CheckOptions) -> str:
    if fp.name in options.methods:
        return options.methods[fp.name]
    # a numeric profile means more than 5 distinct reference values
    n_values = len(set(fp.categories) | set(summary.counts)) if isinstance(summary, CategoricalSummary) else 6
    return default_method(fp.kind, fp.n, n_values)


def _floor(fp: FeatureProfile, n: int, method: str, options: CheckOptions) -> float:
    # numeric noise shrinks with the effective size n*N/(n+N); sparse categories stay noisy at any size
    effective = n * fp.n / (n + fp.n)
    if not options.noise_floor or (fp.kind == "numeric" and effective >= options.noise_floor_max_rows):
        return 0.0
    return noise_floor(
        fp, method, n, alpha=options.noise_floor_alpha, seed=options.seed, coarse_bins=options.coarse_bins
    )


def family(
    profile: ReferenceProfile,
    group: Mapping[str, FeatureProfile],
    summaries: Mapping[str, Summary],
    options: CheckOptions,
    role: str,
) -> tuple[FeatureDriftResult, ...]:
    """Results for one family of tests (inputs, or predictions), corrected together."""
    rows: list[tuple[FeatureProfile, Summary, Measurement | None]] = []
    for name, fp in group.items():
        s = summaries[name]
        if s.n < options.min_rows or fp.n < options.min_rows:
            rows.append((fp, s, None))
            continue
        ref_values = None
        if profile.sample_complete and fp.kind == "numeric" and s.n <= options.exact_max_rows:
            col = profile.sample[name]
            ref_values = col[~np.isnan(col)]
        method = _method_for(fp, s, options)
        rows.append(
            (fp, s, measure(fp, s, method, reference_values=ref_values, coarse_bins=options.coarse_bins))
        )

    tested = [(fp, m) for fp, _, m in rows if m is not None and m.p_val is not None]
    corrected, decisions = correct(
        [m.p_val for _, m in tested if m.p_val is not None],
        [options.threshold_for(fp.name, m.method) for fp, m in tested],
        options.correction,
    )
    by_name = {fp.name: (t, d) for (fp, _), t, d in zip(tested, corrected, decisions, strict=True)}

    results = []
    for fp, s, m in rows:
        q = assess(
            fp,
            s,
            missing_rate_tolerance=options.missing_rate_tolerance,
            out_of_range_tolerance=options.out_of_range_tolerance,
            unseen_tolerance=options.unseen_tolerance,
        )
        common: dict[str, Any] = dict(
            n_reference=fp.n,
            n_current=s.n,
            missing_rate_ref=q.missing_rate_ref,
            missing_rate_cur=q.missing_rate_cur,
            out_of_range_share=q.out_of_range_share,
            unseen_share=q.unseen_share,
            unseen_categories=q.unseen_categories,
            quality_issues=q.issues,
            role=role,
            missing_threshold=options.missing_alpha,
        )
        missing = _missing(fp, s, options)
        if missing is not None:
            common.update(
                missing_is_drift=missing.is_drift,
                missing_p_val=missing.p_val,
                missing_effect_size=missing.effect_size,
            )
        if m is None:
            method = options.methods.get(fp.name, "none")
            threshold = options.threshold_for(fp.name, method) if method != "none" else 0.0
            result = FeatureDriftResult(
                fp.name,
                fp.kind,
                method,
                float("nan"),
                None,
                None,
                threshold,
                False,
                "insufficient_data",
                **common,
            )
        else:
            if is_p_value(m.method):
                threshold, drift = by_name[fp.name]
                drift = drift and m.effect_size >= options.effect_size_floor
            else:
                threshold = max(options.threshold_for(fp.name, m.method), _floor(fp, s.n, m.method, options))
                drift = m.statistic >= threshold
            result = FeatureDriftResult(
                fp.name,
                fp.kind,
                m.method,
                m.statistic,
                m.distance,
                m.p_val,
                threshold,
                bool(drift),
                "drift" if drift else "no_drift",
                effect_size=m.effect_size,
                exact=m.exact,
                error_bound=m.error_bound,
                **common,
            )
        results.append(_with_reason(result) if missing is not None and missing.is_drift else result)
    return tuple(results)


def _missing(fp: FeatureProfile, s: Summary, options: CheckOptions) -> MissingTest | None:
    """The missing-value test, when both sides have enough rows (missing ones included) to judge."""
    rows_ref, rows_cur = fp.n + fp.n_missing, s.n + s.n_missing
    if rows_ref < options.min_rows or rows_cur < options.min_rows:
        return None
    return missing_test(
        fp.n_missing,
        rows_ref,
        s.n_missing,
        rows_cur,
        alpha=options.missing_alpha,
        min_effect=options.missing_min_effect,
    )


def _with_reason(f: FeatureDriftResult) -> FeatureDriftResult:
    p = f.missing_p_val if f.missing_p_val is not None else 1.0
    reason = (
        f"missing values rose from {f.missing_rate_ref:.1%} to {f.missing_rate_cur:.1%} "
        f"(p={p:.2g} < {f.missing_threshold:g}, Cohen's h {f.missing_effect_size or 0.0:.2f})"
    )
    if f.is_drift:
        reason += f"; the present values drifted too ({f.method})"
    return replace(f, status="data_quality", reason=reason)
