"""Missing-value surges: a one-sided two-proportion test of the missing rate, with a minimum effect.

Drift tests look at the non-missing values only, so a broken upstream join that turns 30% of a column into
nulls leaves them quiet. This test asks whether the window's missing rate is higher than the reference's.
Conditional on the total number of missing rows ``M``, the window's share of them is hypergeometric under
equal rates; its binomial form ``Binomial(M, n_cur / (n_ref + n_cur))`` has the same mean and a wider spread,
so its upper tail gives a valid (slightly conservative) p-value that stays exact for the rare counts typical
of missing values, where the normal approximation over-rejects. Significance alone would flag a 1.0% ->
1.1% rise on a million rows, so the rise must also reach a minimum effect: Cohen's
``h = 2 asin(sqrt(rate_cur)) - 2 asin(sqrt(rate_ref))`` >= 0.2 ("small"), which weighs a change near 0%
more than the same change near 50% (0% -> 1% and 1% -> 4% reach it; 1% -> 2% or 20% -> 25% do not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MISSING_ALPHA = 0.01  # strict, as the domain classifier's: a monitor runs this on every window
MIN_EFFECT = 0.2  # Cohen's h of a "small" effect


@dataclass(frozen=True)
class MissingTest:
    """Outcome of ``missing_test``: one-sided p-value, Cohen's h and the decision."""

    p_val: float
    effect_size: float
    is_drift: bool


def cohens_h(rate_ref: float, rate_cur: float) -> float:
    """Cohen's h of a rise from ``rate_ref`` to ``rate_cur`` (negative for a fall).

    Examples
    --------
    >>> round(cohens_h(0.01, 0.30), 3), round(cohens_h(0.2, 0.25), 3)
    (0.959, 0.12)
    """
    return 2.0 * math.asin(math.sqrt(rate_cur)) - 2.0 * math.asin(math.sqrt(rate_ref))


def missing_test(
    n_missing_ref: int,
    n_rows_ref: int,
    n_missing_cur: int,
    n_rows_cur: int,
    *,
    alpha: float = MISSING_ALPHA,
    min_effect: float = MIN_EFFECT,
) -> MissingTest:
    """Test whether the current missing rate rose above the reference's.

    Parameters
    ----------
    n_missing_ref, n_rows_ref : int
        Missing and total rows of the column in the reference.
    n_missing_cur, n_rows_cur : int
        The same in the window.
    alpha : float
        Significance level of the one-sided test.
    min_effect : float
        Smallest Cohen's h that counts as a breach.

    Examples
    --------
    >>> surge = missing_test(200, 20_000, 6_000, 20_000)
    >>> surge.is_drift, surge.p_val < 1e-300, round(surge.effect_size, 2)
    (True, True, 0.96)
    >>> missing_test(200, 20_000, 230, 20_000).is_drift
    False
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not (0 <= n_missing_ref <= n_rows_ref and 0 <= n_missing_cur <= n_rows_cur):
        raise ValueError("missing counts must be between 0 and the row counts")
    if n_rows_ref == 0 or n_rows_cur == 0:
        return MissingTest(1.0, 0.0, False)
    h = cohens_h(n_missing_ref / n_rows_ref, n_missing_cur / n_rows_cur)
    total = n_missing_ref + n_missing_cur
    if n_missing_cur == 0:
        return MissingTest(1.0, h, False)
    from scipy.special import bdtrc  # light; scipy.stats alone costs a second of import

    p_val = float(bdtrc(n_missing_cur - 1, total, n_rows_cur / (n_rows_ref + n_rows_cur)))
    return MissingTest(p_val, h, bool(p_val < alpha and h >= min_effect))
