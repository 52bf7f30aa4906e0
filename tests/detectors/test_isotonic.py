import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from detectors.isotonic import IsotonicMap, choose_calibration, expected_calibration_error, fit_isotonic


def calibrated(seed: int, n: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    return p, (rng.uniform(size=n) < p).astype(int)


@pytest.mark.parametrize("seed", range(5))
def test_calibrated_probabilities_keep_raw(seed: int) -> None:
    p, y = calibrated(seed)
    choice = choose_calibration(p, y)
    assert choice.calibrator is None
    assert choice.ece_raw < 0.03


@pytest.mark.parametrize("power", [0.5, 1.5, 3.0])
def test_miscalibrated_probabilities_are_calibrated_and_ece_falls(power: float) -> None:
    p, y = calibrated(0)
    choice = choose_calibration(p**power, y)
    assert choice.calibrator is not None
    assert choice.ece_calibrated < choice.ece_raw
    assert expected_calibration_error(choice.calibrator(p**power), y) < 0.5 * expected_calibration_error(
        p**power, y
    )


def test_single_class_or_too_few_keeps_raw() -> None:
    p = np.linspace(0, 1, 100)
    assert choose_calibration(p, np.zeros(100, dtype=int)).calibrator is None
    assert choose_calibration(p, (np.arange(100) < 2).astype(int)).calibrator is None


def test_map_matches_sklearn_and_round_trips() -> None:
    p, y = calibrated(3, 2000)
    p = p**2
    m = fit_isotonic(p, y)
    reg = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    grid = np.linspace(-0.5, 1.5, 401)
    np.testing.assert_allclose(m(grid), reg.predict(grid))
    again = IsotonicMap.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again == m
    np.testing.assert_array_equal(again(grid), m(grid))
