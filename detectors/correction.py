"""Multiple-testing correction of per-feature p-value thresholds (Bonferroni, Benjamini-Hochberg)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CORRECTIONS = ("none", "bonferroni", "fdr")


def check_correction(correction: str) -> None:
    """Raise ``ValueError`` naming the valid corrections."""
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; valid: {', '.join(CORRECTIONS)}")


def correct(
    p_vals: Sequence[float], alphas: Sequence[float], correction: str
) -> tuple[list[float], list[bool]]:
    """Corrected thresholds and drift decisions for a family of p-value tests.

    ``none``: drift when ``p < alpha``. ``bonferroni``: threshold ``alpha / m``. ``fdr``: Benjamini-Hochberg
    via ``scipy.stats.false_discovery_control``; drift when the adjusted p-value is below ``alpha``, and the
    reported threshold is the step-up cut-off actually used, ``alpha * max(k, 1) / m`` for ``k`` rejections.

    Examples
    --------
    >>> correct([0.001, 0.02, 0.04], [0.05] * 3, "bonferroni")
    ([0.016666666666666666, 0.016666666666666666, 0.016666666666666666], [True, False, False])
    >>> thresholds, drift = correct([0.001, 0.02, 0.04], [0.05] * 3, "fdr")
    >>> [round(t, 6) for t in thresholds], drift
    ([0.05, 0.05, 0.05], [True, True, True])
    """
    check_correction(correction)
    p = np.asarray(p_vals, dtype=np.float64)
    alpha = np.asarray(alphas, dtype=np.float64)
    m = p.size
    if m == 0:
        return [], []
    if correction == "none":
        return alpha.tolist(), (p < alpha).tolist()
    if correction == "bonferroni":
        return (alpha / m).tolist(), (p < alpha / m).tolist()
    from scipy import stats  # imported on use: scipy.stats costs ~1 s of import, most checks never need it

    adjusted = stats.false_discovery_control(p, method="bh")
    thresholds = [float(a * max(int(np.sum(adjusted < a)), 1) / m) for a in alpha]
    return thresholds, [bool(x) for x in adjusted < alpha]
