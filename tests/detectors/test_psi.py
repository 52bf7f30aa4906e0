import numpy as np

from detectors.psi import fill_zeros, psi


def test_psi_formula() -> None:
    ref, cur = np.array([10, 20, 30, 40]), np.array([25, 25, 25, 25])
    p, q = ref / 100, cur / 100
    assert abs(psi(ref, cur) - np.sum((p - q) * np.log(p / q))) < 1e-12
    assert psi(ref, ref) == 0.0


def test_zero_bins_are_filled_like_evidently() -> None:
    assert fill_zeros(np.array([0.5, 0.5, 0.0])).tolist() == [0.5, 0.5, 1e-4]
    tiny = fill_zeros(np.array([0.99995, 0.00005, 0.0]))
    assert tiny[2] == 0.00005 / 1e6
    assert np.isfinite(psi(np.array([10, 0]), np.array([0, 10])))


def test_psi_is_symmetric_and_grows_with_shift() -> None:
    a, b, c = np.array([50, 50]), np.array([60, 40]), np.array([80, 20])
    assert abs(psi(a, b) - psi(b, a)) < 1e-12
    assert psi(a, c) > psi(a, b) > 0
    assert psi(np.array([0, 0]), a) == 0.0
