"""Two-sample Kolmogorov-Smirnov test: exact on raw values, or bounded on reference cells."""

from __future__ import annotations

import numpy as np

from detectors.columns import FloatArray, IntArray


def ks_exact(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    """KS statistic and p-value, identical to ``scipy.stats.ks_2samp`` (method ``auto``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d, p = ks_exact(rng.normal(size=500), rng.normal(0.5, size=500))
    >>> round(d, 3), p < 0.05
    (0.214, True)
    """
    from scipy import stats

    res = stats.ks_2samp(reference, current)
    return float(res.statistic), float(res.pvalue)


def ks_binned(ref_counts: IntArray, cur_counts: IntArray) -> tuple[float, float, float]:
    """KS statistic, asymptotic p-value and error bound from cell counts (see ``detectors.binning``).

    The supremum of ``|F_ref - F_cur|`` is taken at every cell boundary, so the statistic is a lower bound
    of the exact one; inside an open cell both CDFs rise by at most their mass there, hence
    ``exact - bound <= statistic <= exact`` with ``bound = max over interior open cells of max(p, q)``.
    The p-value is the asymptotic one ``scipy`` uses for large samples (``kstwo`` at the effective size).

    Examples
    --------
    >>> d, p, bound = ks_binned(np.array([0, 50, 50, 0, 0]), np.array([0, 20, 50, 30, 0]))
    >>> round(d, 2), round(bound, 2)
    (0.3, 0.5)
    """
    n, m = int(ref_counts.sum()), int(cur_counts.sum())
    if n == 0 or m == 0:
        return 0.0, 1.0, 1.0
    f = np.cumsum(ref_counts) / n
    g = np.cumsum(cur_counts) / m
    statistic = float(np.max(np.abs(f - g)))
    interior = slice(2, ref_counts.size - 2, 2)
    masses = np.maximum(ref_counts[interior] / n, cur_counts[interior] / m)
    bound = float(masses.max()) if masses.size else 0.0
    return statistic, ks_pvalue(statistic, n, m), bound


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value of a two-sample KS statistic (as ``ks_2samp(method='asymp')``)."""
    en = n * m / (n + m)
    from scipy import stats

    return float(np.clip(stats.kstwo.sf(statistic, np.round(en)), 0.0, 1.0))
