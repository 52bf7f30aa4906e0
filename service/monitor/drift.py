"""Feature and prediction drift of one window against the champion's reference profile.

Prediction drift: the served outputs are compared with the reference's prediction profile when the profile
has one; otherwise with the distribution of the reference's `target` column (the training labels), the
distribution a well-calibrated model's predictions follow on unshifted traffic. A run breaches when the
dataset drifts (share of drifted features, or the domain classifier) or the predictions drift.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from detectors.check import CheckOptions, classifier_vs_profile, compare_summaries
from detectors.columns import as_float
from detectors.importance import DriftRootCause, ModelImportance, rank_drift
from detectors.missing import MIN_EFFECT as MISSING_MIN_EFFECT
from detectors.profile import FeatureProfile, ReferenceProfile, fit_feature
from detectors.results import DatasetDriftResult, MultivariateResult
from service.config import Settings
from service.db.tables import FeatureResult
from service.monitor.reader import WindowData
from service.monitor.references import StoredReference
from service.monitor.store import Outcome, finite, new_run
from service.monitor.windows import Window

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
    return classifier_vs_profile(profile, current, opts)


def decide(drift: DriftProfile, data: WindowData, opts: CheckOptions) -> DatasetDriftResult:
    """The detectors' dataset decision from the streamed summaries."""
    mv = multivariate(drift.profile, data, opts) if opts.multivariate else None
    return compare_summaries(drift.profile, data.summaries, data.n_rows, opts, mv)


def root_cause(importance: ModelImportance | None, result: DatasetDriftResult) -> DriftRootCause | None:
    """Drifted features ranked by the champion's permutation importance x drift effect (None without an
    importance: no model or holdout to fit it on)."""
    if importance is None or result.status == "insufficient_data":
        return None
    return rank_drift(importance, result.features, top=3, barely_used_share=0.05)


def is_breach(result: DatasetDriftResult) -> bool:
    """Drift of the dataset or of the predictions, or a data-quality breach (a surge of missing values is
    the most common production incident: a broken upstream join)."""
    if result.status == "insufficient_data":
        return bool(result.data_quality)
    return result.status == "drift" or result.prediction_drift or bool(result.data_quality)


def excess(f: Any) -> float | None:
    """How far past its threshold a drifted statistic is (distance minus threshold, or threshold / p)."""
    if not f.is_drift:
        return None
    if f.p_val is not None:
        return float(f.threshold / max(f.p_val, 1e-300))
    return float(f.statistic - f.threshold)


def outcome(
    ref: StoredReference,
    prof: DriftProfile,
    result: DatasetDriftResult,
    data: WindowData,
    window: Window,
    *,
    lo: datetime,
    hi: datetime,
    timings_ms: dict[str, float],
    cause: DriftRootCause | None = None,
) -> Outcome:
    """The drift run of a decided window: its summary, headline, alert details and per-feature rows;
    with the champion's importance (`cause`) the headline and the details lead with the drift that
    matters to this model."""
    name, version = window.model_name, window.model_version
    breach = is_breach(result)
    drifted = [f for f in result.features if f.is_drift]
    detail_features = [
        {
            "feature": f.name,
            "method": f.method,
            "statistic": finite(f.statistic),
            "p_val": finite(f.p_val),
            "threshold": f.threshold,
            "excess": excess(f),
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
        + "".join(
            f"; data quality: {f.name}: {f.reason}" for f in result.features if f.status == "data_quality"
        )
    )
    if cause is not None and breach:
        headline = f"{cause.sentence} {headline}"
    lead = {"root_cause": cause.sentence, "root_cause_ranking": cause.to_dict()} if cause is not None else {}
    details = {
        **lead,
        "window": {"start": lo.isoformat(), "end": hi.isoformat()},
        "n_rows": data.n_rows,
        "drift_share": result.drift_share,
        "drift_share_threshold": result.drift_share_threshold,
        "dataset_drift": result.dataset_drift,
        "prediction_drift": result.prediction_drift,
        "drifted": detail_features,
        # missing-value breaches (status data_quality): a receiver sees which feature and why, not only text
        "data_quality": [
            {
                "feature": f.name,
                "missing_rate_ref": f.missing_rate_ref,
                "missing_rate_cur": f.missing_rate_cur,
                "test": "missing rate, one-sided two-proportion",
                "p_val": finite(f.missing_p_val),
                "alpha": f.missing_threshold,
                "effect_size": finite(f.missing_effect_size),
                "min_effect": MISSING_MIN_EFFECT,
                "reason": f.reason,
            }
            for f in result.features
            if f.missing_is_drift
        ],
    }
    summary = {
        "root_cause": cause.to_dict() if cause is not None else None,
        **result.to_dict(),
        "message": headline if breach else f"No drift on {name} version {version}",
        "window": window.describe(),
        "reference": {"source": ref.source, "n_rows": ref.profile.n_rows},
        "prediction_reference": prof.prediction_source,
        "is_breach": breach,
        "timings_ms": timings_ms,
    }
    run = new_run(
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
            statistic=finite(f.statistic),
            p_val=finite(f.p_val),
            threshold=finite(f.threshold),
            is_drift=f.is_drift,
            status=f.status,
        )
        for f in (*result.features, *result.predictions)
    ]
    return Outcome(run, features, headline, details)
