"""Calibration of the default decision: false alarms, power at 0.25 std, no alarm at 0.02 std.

The fast tests draw each window directly as binned counts: a window's statistics depend on its values only
through the cell counts on the reference edges and the out-of-range tail sums, so drawing those from the
exact multinomial is the same in distribution as drawing the rows, at a cost independent of the window
size. The slow test does the same with real 1M-row windows.
"""

import numpy as np
import pytest
from scipy import special

from detectors.check import CheckOptions, compare_summaries, run_check
from detectors.profile import ReferenceProfile
from detectors.window import NumericSummary

N_FEATURES = 20
REPS = 100


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(42)
    return ReferenceProfile.fit({f"f{i}": rng.normal(size=50_000) for i in range(N_FEATURES)})


def drawn_summary(edges: np.ndarray, rng: np.random.Generator, n: int, mu: float) -> NumericSummary:
    """A window of ``n`` N(mu, 1) values, drawn as its cell counts and tail sums."""
    cdf = special.ndtr(edges - mu)
    probs = np.zeros(2 * edges.size + 1)
    probs[0], probs[-1] = cdf[0], 1.0 - cdf[-1]
    probs[2:-2:2] = np.diff(cdf)  # point cells have no mass for a continuous distribution
    counts = rng.multinomial(n, probs / probs.sum())
    # out-of-range values by inverting the normal CDF on the tail's probability range
    low = mu + special.ndtri(rng.uniform(0.0, cdf[0], counts[0]))
    high = mu - special.ndtri(rng.uniform(0.0, 1.0 - cdf[-1], counts[-1]))
    return NumericSummary(n, 0, counts, float(np.sum(edges[0] - low)), float(np.sum(high - edges[-1])))


def flag_rates(
    profile: ReferenceProfile, n: int, shift: float, seed: int, options: CheckOptions | None = None
) -> tuple[float, np.ndarray]:
    """Dataset false-alarm rate and per-feature flag rates over REPS windows; f0 is shifted by ``shift``."""
    rng = np.random.default_rng(seed)
    dataset = 0
    per_feature = np.zeros(N_FEATURES)
    for _ in range(REPS):
        summaries = {
            name: drawn_summary(fp.edges, rng, n, shift if name == "f0" else 0.0)
            for name, fp in profile.features.items()
        }
        result = compare_summaries(profile, summaries, n, options)
        dataset += result.dataset_drift
        per_feature += [f.is_drift for f in result.features]
    return dataset / REPS, per_feature / REPS


@pytest.mark.parametrize("n", [1_000, 10_000, 100_000, 1_000_000])
def test_no_drift_false_alarms(profile: ReferenceProfile, n: int) -> None:
    dataset, per_feature = flag_rates(profile, n, 0.0, seed=n)
    assert dataset <= 0.05
    assert per_feature.max() <= 0.05


@pytest.mark.parametrize("n", [5_000, 50_000, 1_000_000])
def test_quarter_std_shift_is_flagged(profile: ReferenceProfile, n: int) -> None:
    _, per_feature = flag_rates(profile, n, 0.25, seed=n + 1)
    assert per_feature[0] >= 0.95
    assert per_feature[1:].mean() <= 0.05


def test_tiny_shift_not_flagged_at_one_million(profile: ReferenceProfile) -> None:
    _, per_feature = flag_rates(profile, 1_000_000, 0.02, seed=3)
    assert per_feature[0] <= 0.05


def test_effect_size_floor_stops_ks_at_one_million(profile: ReferenceProfile) -> None:
    """KS alone would flag a 0.02 std shift at 1M rows (p ~ 0); the effect-size floor (0.05) does not."""
    ks = CheckOptions(methods={f"f{i}": "ks" for i in range(N_FEATURES)}, multivariate=False)
    rng = np.random.default_rng(5)
    summaries = {
        name: drawn_summary(fp.edges, rng, 1_000_000, 0.02 if name == "f0" else 0.0)
        for name, fp in profile.features.items()
    }
    f0 = compare_summaries(profile, summaries, 1_000_000, ks).features[0]
    assert f0.p_val is not None and f0.p_val < 1e-3
    assert f0.effect_size is not None and f0.effect_size < 0.05
    assert not f0.is_drift
    strong = {**summaries, "f0": drawn_summary(profile.features["f0"].edges, rng, 1_000_000, 0.25)}
    assert compare_summaries(profile, strong, 1_000_000, ks).features[0].is_drift


def test_real_rows_with_domain_classifier_small_windows(profile: ReferenceProfile) -> None:
    """Real 5k-row windows through run_check, classifier included: no false alarm, 0.25 std caught."""
    rng = np.random.default_rng(9)
    alarms = caught = 0
    reps = 8
    for _ in range(reps):
        null = {f"f{i}": rng.normal(size=5_000) for i in range(N_FEATURES)}
        alarms += run_check(profile, null).dataset_drift
        shifted = {**null, "f0": null["f0"] + 0.25}
        caught += (
            "f0" in run_check(profile, shifted, options=CheckOptions(multivariate=False)).drifted_features
        )
    assert alarms == 0
    assert caught == reps


@pytest.mark.slow
def test_calibration_with_real_million_row_windows() -> None:
    rng = np.random.default_rng(11)
    n = 1_000_000
    ref = ReferenceProfile.fit({f"f{i}": rng.normal(size=n) for i in range(N_FEATURES)})
    reps = 10
    alarms = flagged_shift = flagged_tiny = flagged_other = 0
    for _ in range(reps):
        window = {f"f{i}": rng.normal(size=n) for i in range(N_FEATURES)}
        alarms += run_check(ref, window).dataset_drift
        window["f0"] += 0.25
        window["f1"] += 0.02
        result = run_check(ref, window)
        flagged_shift += "f0" in result.drifted_features
        flagged_tiny += "f1" in result.drifted_features
        flagged_other += len(set(result.drifted_features) - {"f0", "f1"})
    assert alarms == 0
    assert flagged_shift == reps
    assert flagged_tiny == 0
    assert flagged_other == 0
