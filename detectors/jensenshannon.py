"""Jensen-Shannon distance (natural log, as ``scipy.spatial.distance.jensenshannon`` and Evidently)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import distance

from detectors.columns import IntArray


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
    return float(distance.jensenshannon(ref_counts.astype(np.float64), cur_counts.astype(np.float64)))
