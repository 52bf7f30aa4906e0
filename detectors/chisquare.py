"""Categorical p-value tests: chi-squared goodness of fit and the two-proportion Z-test (as Evidently)."""

from __future__ import annotations

import numpy as np

from detectors.columns import IntArray


def chisquare_test(ref_counts: IntArray, cur_counts: IntArray) -> tuple[float, float]:
    """Chi-squared statistic and p-value of the current counts against reference frequencies.

    Expected counts are the reference counts scaled to the current total, as Evidently's ``chisquare``
    test does; a category the reference never saw gives an infinite statistic and a p-value of 0.

    Examples
    --------
    >>> stat, p = chisquare_test(np.array([300, 300, 400]), np.array([100, 100, 100]))
    >>> round(stat, 3), round(p, 3)
    (5.556, 0.062)
    """
    n, m = int(ref_counts.sum()), int(cur_counts.sum())
    if n == 0 or m == 0:
        return 0.0, 1.0
    expected = ref_counts * (m / n)
    if np.any((expected == 0) & (cur_counts > 0)):
        return float("inf"), 0.0
    keep = expected > 0
    from scipy import stats  # imported on use: scipy.stats costs ~1 s of import, most checks never need it

    res = stats.chisquare(cur_counts[keep].astype(np.float64), expected[keep])
    return float(res.statistic), float(res.pvalue)


def z_test(ref_counts: IntArray, cur_counts: IntArray) -> tuple[float, float]:
    """Two-proportion Z statistic and two-sided p-value for the share of the first of two categories.

    Examples
    --------
    >>> z, p = z_test(np.array([500, 500]), np.array([450, 550]))
    >>> round(z, 3), round(p, 4)
    (2.239, 0.0252)
    """
    n, m = int(ref_counts.sum()), int(cur_counts.sum())
    if n == 0 or m == 0 or ref_counts.size < 1:
        return 0.0, 1.0
    p1, p2 = ref_counts[0] / n, cur_counts[0] / m
    pooled = (ref_counts[0] + cur_counts[0]) / (n + m)
    var = pooled * (1 - pooled) * (1 / n + 1 / m)
    if var <= 0:
        return 0.0, 1.0
    z = float((p1 - p2) / np.sqrt(var))
    from scipy import stats

    return z, float(2 * (1 - stats.norm.cdf(abs(z))))
