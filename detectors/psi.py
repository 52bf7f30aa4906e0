"""Population Stability Index over shared bins, with Evidently's zero filling."""

from __future__ import annotations

import numpy as np

from detectors.columns import FloatArray, IntArray


def fill_zeros(percents: FloatArray) -> FloatArray:
    """Replace empty bins as Evidently does: 1e-4, or (smallest non-zero share) / 1e6 if that is <= 1e-4."""
    out = percents.astype(np.float64, copy=True)
    nonzero = out[out > 0]
    if nonzero.size == 0:
        return out
    smallest = float(nonzero.min())
    out[out == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return out


def psi(ref_counts: IntArray, cur_counts: IntArray) -> float:
    """``sum((ref% - cur%) * ln(ref% / cur%))`` over bins; both inputs are counts over the same bins.

    Examples
    --------
    >>> round(psi(np.array([50, 50]), np.array([50, 50])), 6)
    0.0
    >>> round(psi(np.array([50, 50]), np.array([70, 30])), 3)
    0.169
    """
    n, m = ref_counts.sum(), cur_counts.sum()
    if n == 0 or m == 0:
        return 0.0
    p = fill_zeros(ref_counts / n)
    q = fill_zeros(cur_counts / m)
    return float(np.sum((p - q) * np.log(p / q)))
