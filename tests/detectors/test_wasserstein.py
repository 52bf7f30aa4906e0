import numpy as np
import pytest
from scipy import stats

from detectors.profile import FeatureProfile
from detectors.wasserstein import normalizer, wasserstein_binned, wasserstein_exact
from detectors.window import summarize_numeric


@pytest.mark.parametrize("seed", range(5))
def test_exact_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=rng.integers(10, 3000)), rng.exponential(size=rng.integers(10, 3000))
    assert abs(wasserstein_exact(a, b) - stats.wasserstein_distance(a, b)) < 1e-9


def binned(ref: np.ndarray, cur: np.ndarray, n_bins: int = 1000) -> tuple[float, float]:
    fp = FeatureProfile.fit_numeric("x", ref, n_bins)
    s = summarize_numeric(fp, cur)
    return wasserstein_binned(fp.edges, fp.counts, s.counts, s.low_tail, s.high_tail)


@pytest.mark.parametrize(
    "gen",
    [
        lambda rng, n, s: rng.normal(s, 1 + s, n),
        lambda rng, n, s: rng.lognormal(s, 1, n),
        lambda rng, n, s: rng.standard_t(3, n) + s,
        lambda rng, n, s: np.where(rng.random(n) < 0.2 + s / 4, 0.0, rng.normal(2, 1, n)),
    ],
)
@pytest.mark.parametrize("shift", [0.0, 0.2, 1.0])
def test_binned_within_documented_bound(gen, shift: float) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    ref, cur = gen(rng, 40_000, 0.0), gen(rng, 30_000, shift)
    w, bound = binned(ref, cur)
    exact = stats.wasserstein_distance(ref, cur)
    assert abs(w - exact) <= bound + 1e-12
    # the bound is loose (wide tail cells); the actual error is small where decisions are made (~0.1)
    norm = normalizer(float(np.std(ref)))
    assert abs(w - exact) / norm < 0.005 + 0.1 * exact / norm


def test_discrete_data_is_exact() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.integers(0, 30, 10_000).astype(float), rng.integers(2, 35, 7_000).astype(float)
    w, bound = binned(ref, cur)
    assert bound == 0.0
    assert abs(w - stats.wasserstein_distance(ref, cur)) < 1e-9


def test_bound_is_small_for_normal_data() -> None:
    rng = np.random.default_rng(0)
    _, bound = binned(rng.normal(size=50_000), rng.normal(size=50_000))
    assert bound < 0.03  # in reference standard deviations, against a 0.1 threshold


def test_bound_shrinks_with_bins() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=50_000), rng.normal(0.3, 1, 50_000)
    assert binned(ref, cur, 2000)[1] < binned(ref, cur, 200)[1] / 5


def test_normalizer_floor() -> None:
    assert normalizer(0.0) == 0.001
    assert normalizer(2.0) == 2.0
