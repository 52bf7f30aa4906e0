import math

import pytest

from detectors.estimated import MetricEstimate, estimated_breach


def est(value: float, se: float, reference: float, metric: str = "accuracy") -> MetricEstimate:
    return MetricEstimate(metric, value, se, value - 3 * se, value + 3 * se, reference)


def test_breach_needs_both_the_effect_and_the_band() -> None:
    assert estimated_breach(est(0.85, 0.01, 0.90)).is_drift  # 5 points, 5 SE
    assert not estimated_breach(est(0.89, 0.001, 0.90)).is_drift  # outside the band, below the effect
    assert not estimated_breach(est(0.85, 0.02, 0.90)).is_drift  # big enough, inside the band
    assert not estimated_breach(est(0.95, 0.01, 0.90)).is_drift  # better, not worse


def test_strong_evidence_and_the_reason_in_words() -> None:
    strong = estimated_breach(est(0.80, 0.01, 0.90))
    assert strong.strong and strong.status == "drift"
    assert "below the reference 0.9000" in strong.reason
    weak = estimated_breach(est(0.86, 0.01, 0.90))
    assert weak.is_drift and not weak.strong
    assert weak.p_val == pytest.approx(3.167e-05, rel=1e-3)
    assert weak.alpha == pytest.approx(0.0013499, rel=1e-4)


def test_lower_is_better_metrics_use_a_relative_effect() -> None:
    b = estimated_breach(est(1.3, 0.05, 1.0, "rmse"), min_effect=0.1)
    assert b.is_drift and b.effect == pytest.approx(0.3)
    assert "above the reference" in b.reason
    assert not estimated_breach(est(0.7, 0.05, 1.0, "rmse"), min_effect=0.1).is_drift


def test_missing_values_are_insufficient_data() -> None:
    b = estimated_breach(est(math.nan, 0.01, 0.9))
    assert b.status == "insufficient_data" and not b.is_drift
