import numpy as np
import pytest
from scipy import stats

from detectors.missing import cohens_h, missing_test


def test_surge_flagged_fall_and_tiny_rise_not() -> None:
    assert missing_test(200, 20_000, 6_000, 20_000).is_drift
    fall = missing_test(6_000, 20_000, 200, 20_000)
    assert not fall.is_drift and fall.effect_size < 0 and fall.p_val > 0.5
    # significant at a million rows, but 1.0% -> 1.2% is below the minimum effect
    tiny = missing_test(10_000, 1_000_000, 12_000, 1_000_000)
    assert tiny.p_val < 1e-10 and not tiny.is_drift
    assert missing_test(0, 20_000, 200, 20_000).is_drift  # 0% -> 1%: h = 0.2
    assert not missing_test(0, 20_000, 0, 20_000).is_drift


def test_p_value_is_the_conditional_binomial_tail() -> None:
    # given 30 missing rows in all, 25 of them in a window as large as the reference
    res = missing_test(5, 1000, 25, 1000)
    assert res.p_val == pytest.approx(stats.binomtest(25, 30, 0.5, alternative="greater").pvalue, rel=1e-9)


def test_small_windows_stay_at_or_below_alpha() -> None:
    """Rare counts, where the normal approximation over-rejects: the null breach rate is at most alpha."""
    rng = np.random.default_rng(0)
    trials = 4000
    breaches = sum(
        missing_test(int(rng.binomial(5000, 0.02)), 5000, int(rng.binomial(100, 0.02)), 100).is_drift
        for _ in range(trials)
    )
    assert breaches / trials <= 0.01


def test_validation() -> None:
    with pytest.raises(ValueError, match="alpha"):
        missing_test(1, 10, 1, 10, alpha=0.0)
    with pytest.raises(ValueError, match="missing counts"):
        missing_test(11, 10, 1, 10)
    assert cohens_h(0.3, 0.3) == 0.0
