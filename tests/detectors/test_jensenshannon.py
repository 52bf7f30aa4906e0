import numpy as np
from scipy.spatial import distance

from detectors.jensenshannon import js_distance


def test_equals_scipy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(10):
        a, b = rng.integers(0, 100, 8), rng.integers(0, 100, 8)
        assert abs(js_distance(a, b) - distance.jensenshannon(a, b)) < 1e-9


def test_bounds() -> None:
    assert js_distance(np.array([3, 3]), np.array([5, 5])) == 0.0
    assert abs(js_distance(np.array([1, 0]), np.array([0, 1])) - np.sqrt(np.log(2))) < 1e-12
    assert js_distance(np.array([0, 0]), np.array([1, 1])) == 0.0
