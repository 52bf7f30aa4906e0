"""Label-free performance estimates (CBPE, DLE): typed results, their honest limits and the breach rule.

The breach rule follows the project's evidence style (``docs/check.md``): an estimate breaches when it is
worse than the reference metric by at least a minimum effect *and* the reference lies outside the
estimate's confidence band (``z`` standard errors, 3 as NannyML), i.e. a one-sided z-test at
``alpha = norm.sf(z)`` (0.00135 for 3). Evidence so strong that one window settles it
(``p_val < strong_p`` and an effect of at least ``strong_factor`` minimum effects) is marked ``strong``.
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
    """One estimated metric of a window and its realized ``reference`` value.

    The band ``[lower, upper]`` is ``value -+ z * sampling_error``, clipped to the metric's range.
    """

    metric: str
    value: float
    sampling_error: float
    lower: float
    upper: float
    reference: float


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

    ``effect`` is how much worse than the reference the estimate is (positive = worse, relative to the
    reference for ``rmse`` / ``mae``); ``p_val`` the one-sided z-test's p-value of "no worse".
    """

    metric: str
    value: float
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
    z: float = 3.0,
    strong_p: float = 1e-6,
    strong_factor: float = 3.0,
) -> EstimatedBreach:
    """Decide whether an estimated metric is worse than its reference, by evidence.

    Breach when the estimate is worse than ``reference`` by at least ``min_effect`` (absolute for
    accuracy-like metrics, a fraction of the reference for ``rmse`` / ``mae``) and the reference lies outside
    the ``z``-standard-error band. ``strong`` marks evidence that may open an episode on this window alone.

    Examples
    --------
    >>> est = MetricEstimate("accuracy", 0.80, 0.01, 0.77, 0.83, 0.90)
    >>> b = estimated_breach(est)
    >>> b.is_drift, b.strong, round(b.effect, 2)
    (True, True, 0.1)
    >>> estimated_breach(MetricEstimate("accuracy", 0.87, 0.02, 0.81, 0.93, 0.90)).is_drift
    False
    """
    alpha = float(stats.norm.sf(z))
    lower_better = estimate.metric in LOWER_IS_BETTER
    ref, value, se = estimate.reference, estimate.value, estimate.sampling_error
    if not all(math.isfinite(v) for v in (ref, value, se)):
        return EstimatedBreach(
            estimate.metric,
            value,
            ref,
            float("nan"),
            min_effect,
            float("nan"),
            alpha,
            False,
            False,
            "insufficient_data",
            f"{estimate.metric}: no finite estimate, reference or band",
        )
    gap = value - ref if lower_better else ref - value
    effect = gap / abs(ref) if lower_better and ref else gap
    p_val = float(stats.norm.sf(gap / se)) if se > 0 else (0.0 if gap > 0 else 1.0)
    is_drift = effect >= min_effect and p_val < alpha
    strong = is_drift and p_val < strong_p and effect >= strong_factor * min_effect
    worse = "above" if lower_better else "below"
    if is_drift:
        reason = (
            f"estimated {estimate.metric} {value:.4f} is {worse} the reference {ref:.4f} by {abs(gap):.4f}, "
            f"outside its band [{estimate.lower:.4f}, {estimate.upper:.4f}] (p={p_val:.2g})"
        )
    else:
        why = "within the minimum effect" if effect < min_effect else "inside the band"
        reason = f"estimated {estimate.metric} {value:.4f} vs reference {ref:.4f}: {why}"
    return EstimatedBreach(
        estimate.metric,
        value,
        ref,
        effect,
        min_effect,
        p_val,
        alpha,
        bool(is_drift),
        bool(strong),
        "drift" if is_drift else "no_drift",
        reason,
    )
