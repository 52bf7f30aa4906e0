"""Compare a current window with a reference profile: per-feature drift, dataset decision, classifier."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from detectors.columns import (
    Column,
    Data,
    as_float,
    as_objects,
    as_series,
    column_names,
    get_column,
    per_column,
    row_count,
    take,
)
from detectors.family import family
from detectors.multivariate import domain_classifier
from detectors.options import CheckOptions
from detectors.profile import FeatureProfile, ReferenceProfile
from detectors.results import DatasetDriftResult, FeatureDriftResult, MultivariateResult
from detectors.select import METHODS, check_method
from detectors.window import Summary, summarize

if TYPE_CHECKING:
    from detectors.performance import PerformanceResult

__all__ = ["CheckOptions", "DatasetDriftResult", "FeatureDriftResult", "MultivariateResult", "run_check"]


def _validate(profile: ReferenceProfile, current: Data, options: CheckOptions) -> None:
    known = {**profile.features, **profile.predictions}
    unknown = [k for k in options.methods if k not in known]
    unknown += [k for k in options.thresholds if k not in known and k not in METHODS]
    if unknown:
        raise ValueError(
            f"unknown feature(s) in methods/thresholds: {unknown}; valid features: {', '.join(known)}; "
            f"valid methods: {', '.join(METHODS)}"
        )
    for name, method in options.methods.items():
        check_method(method, known[name].kind)
    present = set(column_names(current))
    missing = [c for c in known if c not in present]
    if missing:
        raise ValueError(f"current data lacks reference column(s) {missing}")


def compare_summaries(
    profile: ReferenceProfile,
    summaries: Mapping[str, Summary],
    n_current: int,
    options: CheckOptions | None = None,
    multivariate: MultivariateResult | None = None,
) -> DatasetDriftResult:
    """The dataset decision from per-feature window summaries (see ``detectors.window``).

    ``run_check`` is this plus summarizing the window and the domain classifier; summaries can also be
    built incrementally or, in tests, drawn directly as binned counts.
    """
    opts = options or CheckOptions()
    features = family(profile, profile.features, summaries, opts, "feature")
    predictions = family(profile, profile.predictions, summaries, opts, "prediction")
    evaluated = [f for f in features if f.status != "insufficient_data"]
    # a missing-value breach is a change of the feature as much as drift of its values is
    share = sum(f.is_drift or f.missing_is_drift for f in evaluated) / len(evaluated) if evaluated else 0.0
    if n_current < opts.min_rows or profile.n_rows < opts.min_rows:
        status, dataset_drift = "insufficient_data", False
    else:
        dataset_drift = bool(evaluated) and share >= opts.drift_share
        dataset_drift = dataset_drift or bool(multivariate and multivariate.is_drift)
        status = (
            "drift" if dataset_drift else ("no_drift" if evaluated or multivariate else "insufficient_data")
        )
    return DatasetDriftResult(
        status=status,
        dataset_drift=dataset_drift,
        drift_share=share,
        n_reference=profile.n_rows,
        n_current=n_current,
        features=features,
        multivariate=multivariate,
        predictions=predictions,
        prediction_drift=any(f.is_drift for f in predictions),
        correction=opts.correction,
        drift_share_threshold=opts.drift_share,
        data_quality=any(f.missing_is_drift for f in features),
    )


def run_check(
    profile: ReferenceProfile, current: Data, *, options: CheckOptions | None = None
) -> DatasetDriftResult:
    """Check a current window against a reference profile.

    Parameters
    ----------
    profile : ReferenceProfile
    current : pandas.DataFrame or Mapping[str, numpy.ndarray]
        The window; must contain every profiled column (object arrays for categoricals, NaN/None missing).
    options : CheckOptions, optional

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = {"a": rng.normal(size=3000), "b": rng.normal(size=3000), "c": rng.choice(["x", "y"], 3000)}
    >>> cur = {"a": rng.normal(1.0, 1, 3000), "b": rng.normal(size=3000), "c": rng.choice(["x", "y"], 3000)}
    >>> result = run_check(ReferenceProfile.fit(ref), cur, options=CheckOptions(multivariate=False))
    >>> result.status, result.drifted_features, [f.method for f in result.features]
    ('no_drift', ('a',), ['wasserstein', 'wasserstein', 'jensenshannon'])
    """
    opts = options or CheckOptions()
    _validate(profile, current, opts)
    n_current = row_count(current)
    keep = opts.exact_max_rows if profile.sample_complete else 0
    groups = {**profile.features, **profile.predictions}
    classify = bool(
        opts.multivariate
        and profile.features
        and n_current >= opts.min_rows
        and profile.n_rows >= opts.min_rows
    )
    half = min(opts.multivariate_max_rows // 2, n_current)
    rows = np.random.default_rng(opts.seed + 1).choice(n_current, half, replace=False) if classify else None

    def summarize_one(name: str, column: Column) -> tuple[Summary, np.ndarray | None]:
        fp = groups[name]
        summary = summarize(fp, column, keep)
        if rows is None or name not in profile.features:
            return summary, None
        return summary, _classifier_column(fp, take(column, rows), name)

    # one pass: a lazily read window (detectors.columns.LazyColumns) is read once, a column at a time
    done = dict(zip(groups, per_column(current, list(groups), summarize_one), strict=True))
    summaries = {name: summary for name, (summary, _) in done.items()}
    drawn = {name: values for name, (_, values) in done.items() if values is not None}
    multivariate = classifier_vs_profile(profile, drawn, opts) if classify else None
    result = compare_summaries(profile, summaries, n_current, opts, multivariate)
    performance = _performance(profile, current, opts)
    if performance is not None:
        result = replace(result, performance=performance)
    return result


def _classifier_column(fp: FeatureProfile, column: Column, name: str) -> np.ndarray:
    if fp.kind == "numeric":
        return as_float(column, name)
    return np.array([None if v is None or v != v else v for v in as_objects(column)], dtype=object)


def classifier_vs_profile(
    profile: ReferenceProfile, current: dict[str, np.ndarray], opts: CheckOptions
) -> MultivariateResult:
    """The domain classifier between the profile's bounded sample and `current` (one array per feature):
    the one place the CLI's check and the service's streamed windows build it."""
    names = list(profile.features)
    cats = {n: profile.features[n].categories for n in names if profile.features[n].kind == "categorical"}
    return domain_classifier(
        {n: profile.sample[n] for n in names},
        current,
        categories=cats,
        max_rows=opts.multivariate_max_rows,
        threshold=opts.multivariate_threshold,
        seed=opts.seed,
    )


def _performance(profile: ReferenceProfile, current: Data, opts: CheckOptions) -> PerformanceResult | None:
    target = profile.target
    if not target or not profile.predictions or not profile.reference_performance:
        return None
    if target not in column_names(current):
        return None
    pred_name = next(iter(profile.predictions))
    truth = as_series(get_column(current, target))
    pred = as_series(get_column(current, pred_name))
    keep = truth.notna() & pred.notna()
    if int(keep.sum()) < opts.min_rows:
        return None
    # imported on use: detectors.performance pulls in scikit-learn's metrics (~0.5 s)
    from detectors.performance import classification_metrics, compare_performance, regression_metrics

    if profile.predictions[pred_name].kind == "categorical":
        current_metrics = classification_metrics(truth[keep].to_numpy(), pred[keep].to_numpy())
        metric = opts.performance_metric or "accuracy"
    else:
        current_metrics = regression_metrics(truth[keep].to_numpy(), pred[keep].to_numpy())
        metric = opts.performance_metric or "rmse"
    if metric not in profile.reference_performance:
        return None
    return compare_performance(
        current_metrics,
        profile.reference_performance,
        metric=metric,
        tolerance=opts.performance_tolerance,
        relative=metric in ("rmse", "mae"),
    )
