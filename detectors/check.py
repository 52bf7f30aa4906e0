"""Compare a current window with a reference profile: per-feature drift, dataset decision, classifier."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from detectors.columns import Data, as_float, column_names, get_column, row_count
from detectors.correction import check_correction, correct
from detectors.measure import Measurement, measure
from detectors.multivariate import domain_classifier
from detectors.noise_floor import noise_floor
from detectors.performance import (
    PerformanceResult,
    classification_metrics,
    compare_performance,
    regression_metrics,
)
from detectors.profile import FeatureProfile, ReferenceProfile
from detectors.quality import assess
from detectors.results import DatasetDriftResult, FeatureDriftResult, MultivariateResult
from detectors.select import DEFAULT_THRESHOLDS, METHODS, check_method, default_method, is_p_value
from detectors.window import CategoricalSummary, Summary, summarize

__all__ = ["CheckOptions", "DatasetDriftResult", "FeatureDriftResult", "MultivariateResult", "run_check"]


@dataclass(frozen=True)
class CheckOptions:
    """How to decide drift.

    Parameters
    ----------
    methods : dict
        Method per feature name (``ks``, ``wasserstein``, ``psi``, ``jensenshannon``, ``chisquare``, ``z``);
        the others get Evidently 0.7's default choice.
    thresholds : dict
        Threshold per feature name or per method name (a feature's own wins).
    correction : {"none", "bonferroni", "fdr"}
        Multiple-testing correction of the p-value tests.
    drift_share : float
        Dataset drift when at least this share of the evaluated features drifted.
    min_rows : int
        Windows (and features) with fewer non-missing rows get ``insufficient_data``.
    effect_size_floor : float
        A p-value test only reports drift if the effect size (normalized Wasserstein / total variation
        distance) reaches this, so a huge window with a negligible shift is not drift.
    multivariate : bool
        Run the domain classifier on at most ``multivariate_max_rows`` rows (half from each side).
    exact_max_rows : int
        Largest window for which KS and Wasserstein use raw values (when the reference is kept whole).
    noise_floor : bool
        A distance method flags drift only above the distance that undrifted windows of this size reach
        with probability ``noise_floor_alpha`` (see ``detectors.noise_floor``); the reported threshold is
        the raised one. Numeric floors are simulated only below ``noise_floor_max_rows`` effective rows
        (``n * N / (n + N)``), where they can matter; categorical ones always (sparse categories).
    """

    methods: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    correction: str = "none"
    drift_share: float = 0.5
    min_rows: int = 100
    effect_size_floor: float = 0.05
    multivariate: bool = True
    multivariate_max_rows: int = 4000
    multivariate_threshold: float = 0.55
    exact_max_rows: int = 100_000
    noise_floor: bool = True
    noise_floor_alpha: float = 0.01
    noise_floor_max_rows: int = 5000
    coarse_bins: int = 10
    missing_rate_tolerance: float = 0.05
    out_of_range_tolerance: float = 0.01
    unseen_tolerance: float = 0.01
    performance_metric: str | None = None
    performance_tolerance: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        check_correction(self.correction)
        for method in self.methods.values():
            check_method(method)
        if not 0.0 < self.drift_share <= 1.0:
            raise ValueError(f"drift_share must be in (0, 1], got {self.drift_share}")
        if not 0.0 < self.noise_floor_alpha < 1.0:
            raise ValueError(f"noise_floor_alpha must be in (0, 1), got {self.noise_floor_alpha}")
        if self.min_rows < 1 or self.coarse_bins < 2 or self.multivariate_max_rows < 4:
            raise ValueError("min_rows >= 1, coarse_bins >= 2 and multivariate_max_rows >= 4 are required")
        for key, value in self.thresholds.items():
            if not value > 0:
                raise ValueError(f"threshold for {key!r} must be positive, got {value}")

    def threshold_for(self, name: str, method: str) -> float:
        """Feature override, else method override, else the method's default."""
        return float(self.thresholds.get(name, self.thresholds.get(method, DEFAULT_THRESHOLDS[method])))


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


def _family(
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
        )
        if m is None:
            method = options.methods.get(fp.name, "none")
            threshold = options.threshold_for(fp.name, method) if method != "none" else 0.0
            results.append(
                FeatureDriftResult(
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
            )
            continue
        if is_p_value(m.method):
            threshold, drift = by_name[fp.name]
            drift = drift and m.effect_size >= options.effect_size_floor
        else:
            threshold = max(options.threshold_for(fp.name, m.method), _floor(fp, s.n, m.method, options))
            drift = m.statistic >= threshold
        results.append(
            FeatureDriftResult(
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
        )
    return tuple(results)


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
    features = _family(profile, profile.features, summaries, opts, "feature")
    predictions = _family(profile, profile.predictions, summaries, opts, "prediction")
    evaluated = [f for f in features if f.status != "insufficient_data"]
    share = sum(f.is_drift for f in evaluated) / len(evaluated) if evaluated else 0.0
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
    summaries = {name: summarize(fp, get_column(current, name), keep) for name, fp in groups.items()}
    multivariate = None
    if (
        opts.multivariate
        and profile.features
        and n_current >= opts.min_rows
        and profile.n_rows >= opts.min_rows
    ):
        multivariate = _multivariate(profile, current, opts)
    result = compare_summaries(profile, summaries, n_current, opts, multivariate)
    performance = _performance(profile, current, opts)
    if performance is not None:
        result = replace(result, performance=performance)
    return result


def _multivariate(profile: ReferenceProfile, current: Data, opts: CheckOptions) -> MultivariateResult:
    names = list(profile.features)
    n_current = row_count(current)
    half = min(opts.multivariate_max_rows // 2, n_current)
    rows = np.random.default_rng(opts.seed + 1).choice(n_current, half, replace=False)
    cur: dict[str, np.ndarray] = {}
    for name in names:
        series = get_column(current, name).iloc[rows]
        if profile.features[name].kind == "numeric":
            cur[name] = as_float(series, name)
        else:
            cur[name] = np.array(
                [None if v is None or v != v else v for v in series.to_numpy(dtype=object)], dtype=object
            )
    cats = {n: profile.features[n].categories for n in names if profile.features[n].kind == "categorical"}
    ref = {n: profile.sample[n] for n in names}
    return domain_classifier(
        ref,
        cur,
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
    truth = get_column(current, target)
    pred = get_column(current, pred_name)
    keep = truth.notna() & pred.notna()
    if int(keep.sum()) < opts.min_rows:
        return None
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
