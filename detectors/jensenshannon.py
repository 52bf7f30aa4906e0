"""Jensen-Shannon distance (natural log, as ``scipy.spatial.distance.jensenshannon`` and Evidently).

Computed with numpy: ``scipy.spatial`` costs about half a second of import, more than a whole check.
"""

from __future__ import annotations

import numpy as np

from detectors.columns import FloatArray, IntArray


def js_distance(ref_counts: IntArray, cur_counts: IntArray) -> float:
    """Jensen-Shannon distance between two count vectors over the same bins (0 <= d <= sqrt(ln 2)).

    Examples
    --------
    >>> round(js_distance(np.array([50, 50]), np.array([50, 50])), 6)
    0.0
    >>> round(js_distance(np.array([1, 0]), np.array([0, 1])), 4)
    0.8326
    """
    if ref_counts.sum() == 0 or cur_counts.sum() == 0:
        return 0.0
    return float(js_distances(ref_counts, cur_counts[np.newaxis, :])[0])


def js_distances(ref_counts: IntArray, cur_counts: IntArray) -> FloatArray:
    """The distance for each row of a 2-D ``cur_counts`` against ``ref_counts`` (one row, or one per row);
    every row must hold at least one count.

    Examples
    --------
    >>> js_distances(np.array([[1, 1], [1, 0]]), np.array([[1, 1], [0, 1]])).round(4).tolist()
    [0.0, 0.8326]
    """
    p = ref_counts / ref_counts.sum(axis=-1, keepdims=True)
    q = cur_counts / cur_counts.sum(axis=-1, keepdims=True)
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        # x log(x / m) is 0 where x is 0 (and m > 0 wherever x > 0)
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    divergence = np.sum(left + right, axis=-1) / 2.0
    distances: FloatArray = np.sqrt(np.maximum(divergence, 0.0))
    return distances
