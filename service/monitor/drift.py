"""Feature and prediction drift of one window against the champion's reference profile.

Prediction drift: the served outputs are compared with the reference's prediction profile when the profile
has one; otherwise with the distribution of the reference's `target` column (the training labels), the
distribution a well-calibrated model's predictions follow on unshifted traffic. A run breaches when the
dataset drifts (share of drifted features, or the domain classifier) or the predictions drift.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from detectors.check import CheckOptions, compare_summaries
from detectors.columns import as_float
from detectors.multivariate import domain_classifier
from detectors.profile import FeatureProfile, ReferenceProfile, fit_feature
from detectors.results import DatasetDriftResult, MultivariateResult
from service.config import Settings
from service.monitor.reader import WindowData
from service.references import StoredReference

PREDICTION = "prediction"


@dataclass(frozen=True)
class DriftProfile:
    profile: ReferenceProfile
    prediction: FeatureProfile | None
    prediction_source: str  # profile | reference_target | none


def with_prediction_profile(ref: StoredReference) -> DriftProfile:
    """The reference profile with a prediction profile for the served outputs, when one can be had."""
    profile = ref.profile
    if profile.predictions:
        fp = next(iter(profile.predictions.values()))
        return DriftProfile(profile, fp, "profile")
    target = profile.target or "target"
    if target not in ref.sample.columns or ref.sample[target].notna().sum() == 0:
        return DriftProfile(profile, None, "none")
    fp = replace(fit_feature(ref.sample, target, None, n_bins=100), name=PREDICTION)
    sample = dict(profile.sample)
    if fp.kind == "numeric":
        sample[PREDICTION] = as_float(ref.sample[target], target)
    else:
        sample[PREDICTION] = ref.sample[target].to_numpy(dtype=object)
    profile = replace(profile, predictions={PREDICTION: fp}, sample=sample)
    return DriftProfile(profile, fp, "reference_target")


def check_options(settings: Settings) -> CheckOptions:
    return CheckOptions(
        correction=settings.drift_correction,
        drift_share=settings.drift_share,
        min_rows=settings.min_window_rows,
    )


def multivariate(
    profile: ReferenceProfile, data: WindowData, opts: CheckOptions
) -> MultivariateResult | None:
    names = list(profile.features)
    if not names or data.n_rows < opts.min_rows or profile.n_rows < opts.min_rows:
        return None
    current: dict[str, np.ndarray] = {}
    for name in names:
        dtype: Any = np.float64 if profile.features[name].kind == "numeric" else object
        current[name] = np.array(data.sample[name], dtype=dtype)
    cats = {n: fp.categories for n, fp in profile.features.items() if fp.kind == "categorical"}
    return domain_classifier(
        {n: profile.sample[n] for n in names},
        current,
        categories=cats,
        max_rows=opts.multivariate_max_rows,
        threshold=opts.multivariate_threshold,
        seed=opts.seed,
    )


def decide(drift: DriftProfile, data: WindowData, opts: CheckOptions) -> DatasetDriftResult:
    """The detectors' dataset decision from the streamed summaries."""
    mv = multivariate(drift.profile, data, opts) if opts.multivariate else None
    return compare_summaries(drift.profile, data.summaries, data.n_rows, opts, mv)


def is_breach(result: DatasetDriftResult) -> bool:
    return result.status == "drift" or (result.status != "insufficient_data" and result.prediction_drift)


def excess(f: Any) -> float | None:
    """How far past its threshold a drifted statistic is (distance minus threshold, or threshold / p)."""
    if not f.is_drift:
        return None
    if f.p_val is not None:
        return float(f.threshold / max(f.p_val, 1e-300))
    return float(f.statistic - f.threshold)
