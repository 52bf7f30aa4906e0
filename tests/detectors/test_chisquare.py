import numpy as np
from scipy import stats

from detectors.chisquare import chisquare_test, z_test


def test_chisquare_equals_scipy_with_scaled_expectation() -> None:
    rng = np.random.default_rng(0)
    for _ in range(10):
        ref, cur = rng.integers(20, 200, 5), rng.integers(20, 200, 5)
        stat, p = chisquare_test(ref, cur)
        res = stats.chisquare(cur, ref * cur.sum() / ref.sum())
        assert abs(stat - res.statistic) < 1e-9
        assert abs(p - res.pvalue) < 1e-9


def test_unseen_category_is_certain_drift_and_empty_is_none() -> None:
    assert chisquare_test(np.array([10, 10, 0]), np.array([5, 5, 1])) == (float("inf"), 0.0)
    assert chisquare_test(np.array([10, 10, 0]), np.array([5, 5, 0]))[1] == 1.0
    assert chisquare_test(np.array([0]), np.array([3])) == (0.0, 1.0)


def test_z_test_matches_two_proportion_formula() -> None:
    ref, cur = np.array([300, 700]), np.array([350, 650])
    p1, p2, pooled = 0.3, 0.35, 650 / 2000
    z_expected = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 1000))
    z, p = z_test(ref, cur)
    assert abs(z - z_expected) < 1e-12
    assert abs(p - 2 * stats.norm.sf(abs(z_expected))) < 1e-9


def test_z_test_single_identical_category_is_no_drift() -> None:
    assert z_test(np.array([10]), np.array([20])) == (0.0, 1.0)
