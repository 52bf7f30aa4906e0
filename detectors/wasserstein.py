"""Wasserstein-1 distance normalized by the reference standard deviation (Evidently's default)."""

from __future__ import annotations

import numpy as np

from detectors.columns import FloatArray, IntArray

STD_FLOOR = 0.001  # Evidently divides by max(std_ref, 0.001) so constant features do not blow up


def normalizer(std: float) -> float:
    """The divisor applied to the raw distance: ``max(std, 0.001)``."""
    return max(std, STD_FLOOR)


def wasserstein_exact(reference: FloatArray, current: FloatArray) -> float:
    """Raw Wasserstein-1 distance, identical to ``scipy.stats.wasserstein_distance``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(wasserstein_exact(rng.normal(size=2000), rng.normal(0.5, size=2000)), 2)
    0.53
    """
    from scipy import stats  # imported on use: scipy.stats costs ~1 s of import, most checks never need it

    return float(stats.wasserstein_distance(reference, current))


def wasserstein_binned(
    edges: FloatArray, ref_counts: IntArray, cur_counts: IntArray, low_tail: float, high_tail: float
) -> tuple[float, float]:
    """Raw Wasserstein-1 distance and its error bound from cell counts.

    ``W = integral |F_ref - F_cur| dx``. Point cells and the two outer cells are exact: ``low_tail`` and
    ``high_tail`` are the sums of ``edges[0] - x`` and ``x - edges[-1]`` over current values outside the
    reference range. Inside each interior open cell of width ``w`` both CDFs are taken as linear; each
    differs from its linear version by less than its mass there, hence
    ``|W - exact| <= bound = sum over interior open cells of w * (p + q)``.

    Examples
    --------
    >>> edges = np.array([0.0, 1.0])
    >>> w, bound = wasserstein_binned(edges, np.array([0, 1, 0, 1, 0]), np.array([0, 0, 0, 2, 0]), 0.0, 0.0)
    >>> w, bound
    (0.5, 0.0)
    """
    n, m = int(ref_counts.sum()), int(cur_counts.sum())
    if n == 0 or m == 0:
        return 0.0, 0.0
    interior = float(wasserstein_binned_interior(edges, ref_counts, cur_counts[np.newaxis, :])[0])
    bound = float(np.sum(np.diff(edges) * (ref_counts[2:-2:2] / n + cur_counts[2:-2:2] / m)))
    return interior + (low_tail + high_tail) / m, bound


def wasserstein_binned_interior(edges: FloatArray, ref_counts: IntArray, cur_counts: IntArray) -> FloatArray:
    """The in-range part of ``wasserstein_binned`` for each row of a 2-D ``cur_counts`` (one window per row;
    every row must hold at least one value). ``ref_counts`` is one reference, or one per row (2-D)."""
    n = ref_counts.sum(axis=-1, keepdims=True)
    m = cur_counts.sum(axis=1, keepdims=True)
    diff = np.cumsum(ref_counts / n - cur_counts / m, axis=1)
    # F - G just after each point cell k (cells 2k+1) is the start of the open cell that follows
    d0 = diff[:, 1:-1:2][:, :-1]
    d1 = d0 + ref_counts[..., 2:-2:2] / n - cur_counts[:, 2:-2:2] / m
    a0, a1 = np.abs(d0), np.abs(d1)
    same_sign = d0 * d1 >= 0
    denom = np.where(same_sign, 1.0, a0 + a1)
    crossing = (d0 * d0 + d1 * d1) / (2.0 * np.where(denom > 0, denom, 1.0))
    result: FloatArray = np.sum(np.diff(edges) * np.where(same_sign, (a0 + a1) / 2.0, crossing), axis=1)
    return result
