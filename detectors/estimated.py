"""Label-free performance estimates (CBPE, DLE): typed results, their honest limits and the breach rule.

Each estimate carries two uncertainties. The *band* (``lower``, ``upper``: value -+ 3 ``sampling_error``,
NannyML's) is where the realized value would fall once labels arrive; it includes the labels' own noise.
``estimate_error`` is the standard error of the estimate itself given the window's inputs (a bootstrap over
its rows), about half as wide.

The breach rule follows the project's evidence style: an estimate breaches when it is worse than its
*baseline* (the same estimator applied to the labeled reference rows, so that the estimator's own bias
cancels) by at least a minimum effect *and* a one-sided z-test of the difference, with standard error
``sqrt(estimate_error**2 + baseline_error**2)``, gives ``p_val < alpha``. The realized ``reference`` metric
is reported beside it; comparing with it instead adds the reference's sampling luck and the estimator's
bias (a point or so each in ``bench/estimate.py``) to every decision. Testing against the band
instead (NannyML's alert) asks where the realized value might land, not whether the model got worse, and
in ``bench/estimate.py`` it opened episodes up to three windows after the labels would have told.
Evidence so strong that one window settles it (``p_val < strong_p`` and at least ``strong_factor``
minimum effects) is marked ``strong``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy import stats

from detectors.results import jsonable

CBPE_LIMITS = (
    "Estimated without labels (CBPE): assumes the model's probabilities, calibrated on the labeled "
    "reference, stay calibrated, i.e. only the inputs move and P(y|x) is unchanged. It cannot see concept "
    "drift (the same inputs now meaning a different label) and is unreliable in input regions the reference "
    "did not cover; realized performance from labels remains the judge."
)
DLE_LIMITS = (
    "Estimated without labels (DLE): a model of per-row error fitted on the labeled reference predicts the "
    "error of new rows, assuming P(y|x) is unchanged. It cannot see concept drift and is unreliable in input "
    "regions the reference did not cover; realized performance from labels remains the judge."
)
LOWER_IS_BETTER = ("rmse", "mae")


@dataclass(frozen=True)
class MetricEstimate:
    """One estimated metric of a window, the realized ``reference`` value and the estimator's ``baseline``.

    The band ``[lower, upper]`` is ``value -+ z * sampling_error``, clipped to the metric's range: where the
    realized value should fall. ``estimate_error`` is the standard error of ``value`` itself (``NaN``: not
    measured, the breach rule then uses ``sampling_error``). ``baseline`` is the same estimator on the
    reference rows and ``baseline_error`` its standard error; without a baseline (``NaN``) the breach rule
    compares with ``reference``.
    """

    metric: str
    value: float
    sampling_error: float
    lower: float
    upper: float
    reference: float
    estimate_error: float = float("nan")
    baseline: float = float("nan")
    baseline_error: float = 0.0


@dataclass(frozen=True)
class EstimatedPerformance:
    """Estimated performance of one unlabeled window (``status`` ``estimated`` or ``insufficient_data``).

    ``confusion_matrix`` (CBPE) is the expected count matrix, rows true and columns predicted, in
    ``classes`` order; ``limits`` is the sentence every stored run must carry.
    """

    method: str
    status: str
    n_rows: int
    metrics: tuple[MetricEstimate, ...]
    limits: str
    classes: tuple[Any, ...] = ()
    confusion_matrix: tuple[tuple[float, ...], ...] = ()
    calibrated: tuple[bool, ...] = field(default=())

    def metric(self, name: str) -> MetricEstimate:
        """The estimate of ``name``; ``KeyError`` naming the estimated metrics otherwise."""
        for m in self.metrics:
            if m.metric == name:
                return m
        raise KeyError(f"{name!r} not estimated; estimated: {', '.join(m.metric for m in self.metrics)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite floats become ``None``)."""
        return {k: jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class EstimatedBreach:
    """The breach decision for one estimated metric (``status`` drift / no_drift / insufficient_data).

    ``baseline`` is the value compared with (the estimator's baseline, else the realized reference);
    ``effect`` is how much worse than it the estimate is (positive = worse, relative to it for ``rmse`` /
    ``mae``); ``p_val`` the one-sided z-test's p-value of "no worse".
    """

    metric: str
    value: float
    baseline: float
    reference: float
    effect: float
    min_effect: float
    p_val: float
    alpha: float
    is_drift: bool
    strong: bool
    status: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {k: jsonable(v) for k, v in asdict(self).items()}


def estimated_breach(
    estimate: MetricEstimate,
    *,
    min_effect: float = 0.02,
    alpha: float = 0.01,
    strong_p: float = 1e-6,
    strong_factor: float = 3.0,
) -> EstimatedBreach:
    """Decide whether an estimated metric is worse than its reference, by evidence.

    Breach when the estimate is worse than its baseline by at least ``min_effect`` (absolute for
    accuracy-like metrics, a fraction of the reference for ``rmse`` / ``mae``) and the one-sided z-test of
    the difference gives ``p_val < alpha``. ``strong`` marks evidence that may open an episode on this
    window alone.

    Examples
    --------
    >>> est = MetricEstimate("accuracy", 0.80, 0.013, 0.76, 0.84, 0.91, 0.006, baseline=0.90)
    >>> b = estimated_breach(est)
    >>> b.is_drift, b.strong, round(b.effect, 2)
    (True, True, 0.1)
    >>> estimated_breach(MetricEstimate("accuracy", 0.89, 0.013, 0.85, 0.93, 0.90, 0.006)).reason
    'estimated accuracy 0.8900 vs the reference 0.9000: within the minimum effect'
    """
    lower_better = estimate.metric in LOWER_IS_BETTER
    value, real = estimate.value, estimate.reference
    has_base = math.isfinite(estimate.baseline)
    ref = estimate.baseline if has_base else real
    own = estimate.estimate_error if math.isfinite(estimate.estimate_error) else estimate.sampling_error
    se = math.hypot(own, estimate.baseline_error) if has_base else own
    if not all(math.isfinite(v) for v in (ref, value, se)):
        return EstimatedBreach(
            estimate.metric, value, ref, real, float("nan"), min_effect, float("nan"), alpha, False, False,
            "insufficient_data", f"{estimate.metric}: no finite estimate, baseline or error",
        )  # fmt: skip
    gap = value - ref if lower_better else ref - value
    effect = gap / abs(ref) if lower_better and ref else gap
    p_val = float(stats.norm.sf(gap / se)) if se > 0 else (0.0 if gap > 0 else 1.0)
    is_drift = effect >= min_effect and p_val < alpha
    strong = is_drift and p_val < strong_p and effect >= strong_factor * min_effect
    what = f"{ref:.4f} on the reference (realized {real:.4f})" if has_base else f"the reference {ref:.4f}"
    if is_drift:
        worse = "above" if lower_better else "below"
        reason = (
            f"estimated {estimate.metric} {value:.4f} is {abs(gap):.4f} {worse} {what} (p={p_val:.2g}); "
            f"labels should land in [{estimate.lower:.4f}, {estimate.upper:.4f}]"
        )
    else:
        why = "within the minimum effect" if effect < min_effect else f"not significant (p={p_val:.2g})"
        reason = f"estimated {estimate.metric} {value:.4f} vs {what}: {why}"
    return EstimatedBreach(
        estimate.metric, value, ref, real, effect, min_effect, p_val, alpha, bool(is_drift), bool(strong),
        "drift" if is_drift else "no_drift", reason,
    )  # fmt: skip
