"""Compute one method's statistic for one column from its profile and window summary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors import binning
from detectors.chisquare import chisquare_test, z_test
from detectors.columns import FloatArray
from detectors.jensenshannon import js_distance
from detectors.ks import ks_binned, ks_exact
from detectors.profile import FeatureProfile
from detectors.psi import psi
from detectors.select import check_method
from detectors.wasserstein import normalizer, wasserstein_binned, wasserstein_exact
from detectors.window import CategoricalSummary, NumericSummary, Summary, aligned_counts


@dataclass(frozen=True)
class Measurement:
    """A statistic before thresholds and corrections are applied."""

    method: str
    statistic: float
    distance: float | None
    p_val: float | None
    effect_size: float
    exact: bool
    error_bound: float | None


def measure(
    fp: FeatureProfile,
    summary: Summary,
    method: str,
    *,
    reference_values: FloatArray | None = None,
    coarse_bins: int = 10,
) -> Measurement:
    """Compute ``method`` for a column.

    Numeric KS and Wasserstein are exact (scipy on raw values) when ``reference_values`` holds the whole
    reference and the summary kept the window's raw values; otherwise they come from cells with an error
    bound. Numeric PSI and JS use ``coarse_bins`` groups of equal reference mass.

    Examples
    --------
    >>> from detectors.window import summarize_numeric
    >>> rng = np.random.default_rng(0)
    >>> fp = FeatureProfile.fit_numeric("x", rng.normal(size=5000), n_bins=1000)
    >>> m = measure(fp, summarize_numeric(fp, rng.normal(0.5, 1, 5000)), "wasserstein")
    >>> round(m.statistic, 1), m.exact, m.error_bound < 0.05
    (0.5, False, True)
    """
    check_method(method, fp.kind)
    if isinstance(summary, NumericSummary):
        return _numeric(fp, summary, method, reference_values, coarse_bins)
    assert isinstance(summary, CategoricalSummary)
    return _categorical(fp, summary, method)


def _numeric(
    fp: FeatureProfile, s: NumericSummary, method: str, ref_values: FloatArray | None, coarse_bins: int
) -> Measurement:
    norm = normalizer(fp.std or 0.0)
    exact = ref_values is not None and s.values is not None
    if exact:
        assert ref_values is not None and s.values is not None
        w, w_bound = wasserstein_exact(ref_values, s.values), None
    else:
        w, w_bound = wasserstein_binned(fp.edges, fp.counts, s.counts, s.low_tail, s.high_tail)
    effect = w / norm
    if method == "wasserstein":
        bound = None if w_bound is None else w_bound / norm
        return Measurement(method, effect, effect, None, effect, exact, bound)
    if method == "ks":
        if exact:
            assert ref_values is not None and s.values is not None
            d, p = ks_exact(ref_values, s.values)
            return Measurement(method, d, d, p, effect, True, None)
        d, p, d_bound = ks_binned(fp.counts, s.counts)
        return Measurement(method, d, d, p, effect, False, d_bound)
    starts = binning.group_bounds(fp.counts, coarse_bins)
    ref, cur = binning.regroup(fp.counts, starts), binning.regroup(s.counts, starts)
    value = psi(ref, cur) if method == "psi" else js_distance(ref, cur)
    return Measurement(method, value, value, None, effect, True, None)


def _categorical(fp: FeatureProfile, s: CategoricalSummary, method: str) -> Measurement:
    ref, cur, _ = aligned_counts(fp, s)
    n, m = ref.sum(), cur.sum()
    effect = float(0.5 * np.abs(ref / max(n, 1) - cur / max(m, 1)).sum())
    if method == "chisquare":
        stat, p = chisquare_test(ref, cur)
        return Measurement(method, stat, None, p, effect, True, None)
    if method == "z":
        z, p = z_test(ref, cur)
        return Measurement(method, z, None, p, effect, True, None)
    value = psi(ref, cur) if method == "psi" else js_distance(ref, cur)
    return Measurement(method, value, value, None, effect, True, None)
