import numpy as np
import pytest
from scipy import stats

from detectors.binning import CellIndex, counts_of_sorted, quantile_edges
from detectors.ks import ks_binned, ks_exact, ks_pvalue


@pytest.mark.parametrize("seed", range(5))
def test_exact_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=rng.integers(50, 3000)), rng.normal(0.1, 1.2, size=rng.integers(50, 3000))
    d, p = ks_exact(a, b)
    ref = stats.ks_2samp(a, b)
    assert abs(d - ref.statistic) < 1e-9
    assert abs(p - ref.pvalue) < 1e-9


@pytest.mark.parametrize(
    "gen",
    [
        lambda rng, n, s: rng.normal(s, 1, n),
        lambda rng, n, s: rng.lognormal(s, 1, n),
        lambda rng, n, s: np.round(rng.normal(10 + s, 3, n)),
    ],
)
@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_binned_statistic_within_documented_bound(gen, shift: float) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    ref = np.sort(gen(rng, 30_000, 0.0))
    cur = gen(rng, 20_000, shift)
    edges = quantile_edges(ref, 1000)
    d, p, bound = ks_binned(counts_of_sorted(edges, ref), CellIndex.build(edges).counts(cur))
    exact = stats.ks_2samp(ref, cur).statistic
    assert exact - bound - 1e-12 <= d <= exact + 1e-12
    assert bound <= 0.01  # cells hold 1/1000 of the reference; a shifted window piles up more


def test_binned_pvalue_matches_asymptotic_scipy() -> None:
    rng = np.random.default_rng(0)
    ref, cur = np.sort(rng.normal(size=20_000)), rng.normal(0.02, 1, 20_000)
    edges = np.unique(ref)  # every reference value an edge: binned = exact statistic
    d, p, _ = ks_binned(counts_of_sorted(edges, ref), CellIndex.build(edges).counts(cur))
    res = stats.ks_2samp(ref, cur, method="asymp")
    assert abs(d - res.statistic) < 1e-9
    assert abs(p - res.pvalue) < 1e-9
    assert ks_pvalue(0.0, 10, 10) == 1.0


def test_empty_side_is_no_evidence() -> None:
    assert ks_binned(np.array([0, 5, 0]), np.array([0, 0, 0])) == (0.0, 1.0, 1.0)
