"""Small windows: distance methods flag drift only above the noise of their size."""

from dataclasses import replace

import numpy as np
import pytest

from detectors.check import CheckOptions, run_check
from detectors.measure import measure
from detectors.noise_floor import _CACHE, _distances, _fingerprint, noise_floor
from detectors.profile import FeatureProfile, ReferenceProfile
from detectors.window import CategoricalSummary, NumericSummary

N_FEATURES = 10


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(5)
    data: dict[str, np.ndarray] = {f"f{i}": rng.normal(size=20_000) for i in range(N_FEATURES - 2)}
    data["skewed"] = rng.lognormal(0.0, 1.0, 20_000)
    data["city"] = rng.choice(
        np.array(list("abcdef"), dtype=object), 20_000, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05]
    )
    return ReferenceProfile.fit(data)


def window(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {f"f{i}": rng.normal(shift, 1.0, n) for i in range(N_FEATURES - 2)}
    out["skewed"] = rng.lognormal(0.0, 1.0, n)
    out["city"] = rng.choice(np.array(list("abcdef"), dtype=object), n, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    return out


def flag_rate(profile: ReferenceProfile, n: int, noise_floor_on: bool) -> float:
    rng = np.random.default_rng(11)
    opts = CheckOptions(multivariate=False, noise_floor=noise_floor_on)
    flags = 0
    reps = 30
    for _ in range(reps):
        result = run_check(profile, window(rng, n), options=opts)
        flags += sum(f.is_drift for f in result.features)
    return flags / (reps * N_FEATURES)


def test_undrifted_small_windows_are_no_longer_flagged_for_noise(profile: ReferenceProfile) -> None:
    # the fixed 0.1 threshold flags a large share of undrifted 200-row windows' features
    assert flag_rate(profile, 200, noise_floor_on=False) > 0.10
    assert flag_rate(profile, 200, noise_floor_on=True) <= 0.03
    assert flag_rate(profile, 500, noise_floor_on=True) <= 0.03


def test_real_shifts_in_small_windows_are_still_flagged(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(3)
    caught = 0
    for _ in range(20):
        result = run_check(profile, window(rng, 200, shift=0.6), options=CheckOptions(multivariate=False))
        shifted = [f for f in result.features if f.name.startswith("f")]
        caught += sum(f.is_drift for f in shifted)
        assert result.dataset_drift
    assert caught / (20 * (N_FEATURES - 2)) >= 0.95


def test_reported_threshold_is_the_raised_one_and_large_windows_keep_evidentlys(
    profile: ReferenceProfile,
) -> None:
    rng = np.random.default_rng(4)
    small = run_check(profile, window(rng, 200), options=CheckOptions(multivariate=False))
    assert all(f.threshold > 0.1 for f in small.features if f.method == "wasserstein")
    off = run_check(profile, window(rng, 200), options=CheckOptions(multivariate=False, noise_floor=False))
    assert {f.threshold for f in off.features} == {0.1}
    large = run_check(profile, window(rng, 6000), options=CheckOptions(multivariate=False))
    assert {f.threshold for f in large.features} == {0.1}


def test_floor_shrinks_with_window_size(profile: ReferenceProfile) -> None:
    fp = profile.features["f0"]
    floors = [noise_floor(fp, "wasserstein", n) for n in (100, 200, 1000, 4000)]
    assert floors == sorted(floors, reverse=True)
    assert floors[0] > 0.1 > floors[2]
    city = profile.features["city"]
    assert noise_floor(city, "jensenshannon", 50) > noise_floor(city, "jensenshannon", 2000) > 0.0


def test_vectorized_distances_equal_measure(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(0)
    fp = profile.features["skewed"]
    sims = rng.multinomial(300, fp.counts / fp.counts.sum(), size=10).astype(np.int64)
    refs = rng.multinomial(fp.n, fp.counts / fp.counts.sum(), size=10).astype(np.int64)
    expected = [
        measure(replace(fp, counts=r), NumericSummary(300, 0, c, 0.0, 0.0), "wasserstein").statistic
        for r, c in zip(refs, sims, strict=True)
    ]
    assert np.allclose(_distances(fp, "wasserstein", refs, sims, 10), expected, rtol=0, atol=1e-12)
    city = profile.features["city"]
    shares = city.category_counts / city.category_counts.sum()
    sims = rng.multinomial(300, shares, size=10).astype(np.int64)
    refs = rng.multinomial(city.n, shares, size=10).astype(np.int64)
    summaries = [
        CategoricalSummary(300, 0, dict(zip(city.categories, map(int, c), strict=True))) for c in sims
    ]
    drawn = [replace(city, category_counts=r) for r in refs]
    expected = [measure(d, s, "jensenshannon").statistic for d, s in zip(drawn, summaries, strict=True)]
    assert np.allclose(_distances(city, "jensenshannon", refs, sims, 10), expected, rtol=0, atol=1e-12)
    # other methods take the generic path
    psi = [measure(d, s, "psi").statistic for d, s in zip(drawn[:3], summaries[:3], strict=True)]
    assert np.allclose(_distances(city, "psi", refs[:3], sims[:3], 10), psi, rtol=0, atol=1e-12)


def test_floor_is_cached_by_profile_content_and_validated() -> None:
    fp = FeatureProfile.fit_numeric("x", np.random.default_rng(1).normal(size=3000), n_bins=50)
    first = noise_floor(fp, "wasserstein", 150)
    assert _CACHE[(_fingerprint(fp), "wasserstein", 150, 0.01, 200, 0, 10)] == first
    # the monitor reloads the profile for every check: an equal copy hits the same entry
    copy = FeatureProfile.fit_numeric("x", np.random.default_rng(1).normal(size=3000), n_bins=50)
    assert copy is not fp and _fingerprint(copy) == _fingerprint(fp)
    other = FeatureProfile.fit_numeric("x", np.random.default_rng(2).normal(size=3000), n_bins=50)
    assert _fingerprint(other) != _fingerprint(fp)
    assert noise_floor(copy, "wasserstein", 150) == first
    stored = ReferenceProfile.fit({"x": np.random.default_rng(1).normal(size=3000)})
    loaded = ReferenceProfile.from_json(stored.to_json())
    assert _fingerprint(loaded.features["x"]) == _fingerprint(stored.features["x"])
    with pytest.raises(ValueError, match="n must be"):
        noise_floor(fp, "wasserstein", 0)
    with pytest.raises(ValueError, match="noise_floor_alpha"):
        CheckOptions(noise_floor_alpha=1.5)
