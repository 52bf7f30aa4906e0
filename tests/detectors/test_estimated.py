import math

import numpy as np
import pytest

from detectors.confusion import estimate_errors
from detectors.estimated import MetricEstimate, estimated_breach


def est(
    value: float, se: float, reference: float, metric: str = "accuracy", own: float = math.nan
) -> MetricEstimate:
    return MetricEstimate(metric, value, se, value - 3 * se, value + 3 * se, reference, own)


def test_breach_needs_both_the_effect_and_the_evidence() -> None:
    assert estimated_breach(est(0.85, 0.01, 0.90)).is_drift  # 5 points, 5 SE
    assert not estimated_breach(est(0.89, 0.001, 0.90)).is_drift  # significant, below the effect
    assert not estimated_breach(est(0.85, 0.03, 0.90)).is_drift  # big enough, p = 0.048
    assert not estimated_breach(est(0.95, 0.01, 0.90)).is_drift  # better, not worse


def test_the_estimates_own_error_decides_not_the_band() -> None:
    # the band (label noise included) is wide, the estimate itself is precise: evidence of a real drop
    wide_band = est(0.86, 0.02, 0.90, own=0.015)
    assert wide_band.lower < wide_band.reference < wide_band.upper
    b = estimated_breach(wide_band)
    assert b.is_drift and b.p_val == pytest.approx(0.00383, rel=0.01)
    assert not estimated_breach(est(0.86, 0.02, 0.90)).is_drift  # without it: the band's error, p = 0.023
    # the baseline's own uncertainty is added to the estimate's
    noisy_base = MetricEstimate(
        "accuracy", 0.86, 0.02, 0.8, 0.92, 0.90, 0.015, baseline=0.90, baseline_error=0.02
    )
    assert not estimated_breach(noisy_base).is_drift


def test_the_baseline_not_the_realized_reference_is_the_yardstick() -> None:
    # the estimator reads 0.88 on the reference rows whose realized accuracy was 0.90: a window estimated
    # at 0.87 is no drop, though it is 3 points under the realized reference
    b = estimated_breach(MetricEstimate("accuracy", 0.87, 0.01, 0.84, 0.90, 0.90, 0.004, 0.88, 0.002))
    assert not b.is_drift and b.baseline == 0.88 and b.reference == 0.90
    assert "0.8800 on the reference (realized 0.9000)" in b.reason


def test_strong_evidence_and_the_reason_in_words() -> None:
    strong = estimated_breach(est(0.80, 0.01, 0.90))
    assert strong.strong and strong.status == "drift"
    assert "0.1000 below the reference 0.9000" in strong.reason
    weak = estimated_breach(est(0.86, 0.01, 0.90))
    assert weak.is_drift and not weak.strong
    assert weak.p_val == pytest.approx(3.167e-05, rel=1e-3) and weak.alpha == 0.01
    assert "not significant" in estimated_breach(est(0.85, 0.03, 0.90)).reason


def test_lower_is_better_metrics_use_a_relative_effect() -> None:
    b = estimated_breach(est(1.3, 0.05, 1.0, "rmse"), min_effect=0.1)
    assert b.is_drift and b.effect == pytest.approx(0.3)
    assert "above the reference" in b.reason
    assert not estimated_breach(est(0.7, 0.05, 1.0, "rmse"), min_effect=0.1).is_drift


def test_missing_values_are_insufficient_data() -> None:
    b = estimated_breach(est(math.nan, 0.01, 0.9))
    assert b.status == "insufficient_data" and not b.is_drift


def test_bootstrap_error_of_expected_accuracy_matches_its_closed_form() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=2000)
    cal, pred = np.column_stack([1 - p, p]), (p > 0.5).astype(np.int64)
    errors = estimate_errors(cal, pred, cal, n_boot=400)
    correct = np.where(pred == 1, p, 1 - p)
    assert errors["accuracy"] == pytest.approx(correct.std() / np.sqrt(p.size), rel=0.15)
    assert 0 < errors["roc_auc"] < 0.02 and 0 < errors["f1"] < 0.02
