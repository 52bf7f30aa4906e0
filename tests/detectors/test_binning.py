import numpy as np
import pytest

from detectors.binning import CellIndex, counts_of_sorted, group_bounds, quantile_edges, regroup

GENERATORS = {
    "normal": lambda rng, n: rng.normal(size=n),
    "lognormal": lambda rng, n: rng.lognormal(sigma=1.5, size=n),
    "integers": lambda rng, n: rng.integers(0, 40, n).astype(float),
    "cauchy": lambda rng, n: rng.standard_cauchy(n),  # edges too uneven for the table: binary-search path
    "mixed_atoms": lambda rng, n: np.where(rng.random(n) < 0.3, 0.0, rng.exponential(size=n)),
}


def reference_cells(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(edges, values, side="right")
    on_edge = (idx > 0) & (values == edges[np.maximum(idx - 1, 0)])
    return np.bincount(2 * idx - on_edge, minlength=2 * edges.size + 1)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_cell_index_counts_equal_binary_search(name: str) -> None:
    rng = np.random.default_rng(1)
    gen = GENERATORS[name]
    ref = np.sort(gen(rng, 20_000))
    edges = quantile_edges(ref, 500)
    cur = np.concatenate((gen(rng, 50_000), [ref[0] - 1, ref[-1] + 1, ref[0], ref[-1]]))
    index = CellIndex.build(edges)
    assert np.array_equal(index.counts(cur), reference_cells(edges, cur))
    assert np.array_equal(counts_of_sorted(edges, ref), reference_cells(edges, ref))


def test_cauchy_falls_back_to_binary_search() -> None:
    ref = np.sort(np.random.default_rng(0).standard_cauchy(20_000))
    assert CellIndex.build(quantile_edges(ref, 1000)).passes > 6


def test_reference_has_no_out_of_range_cells_and_discrete_data_sits_on_points() -> None:
    ref = np.sort(np.random.default_rng(0).integers(0, 10, 1000).astype(float))
    edges = quantile_edges(ref, 100)
    counts = counts_of_sorted(edges, ref)
    assert edges.tolist() == list(range(10))
    assert counts[0::2].sum() == 0  # all mass on point cells: binned statistics are exact
    assert counts[1::2].sum() == 1000


def test_single_edge_and_empty() -> None:
    index = CellIndex.build(np.array([2.0]))
    assert index.counts(np.array([1.0, 2.0, 2.0, 3.0])).tolist() == [1, 2, 1]
    assert CellIndex.build(np.empty(0)).counts(np.array([1.0, 2.0])).tolist() == [2]
    assert quantile_edges(np.empty(0), 10).size == 0


def test_group_bounds_give_equal_reference_mass() -> None:
    ref = np.sort(np.random.default_rng(0).normal(size=10_000))
    edges = quantile_edges(ref, 1000)
    counts = counts_of_sorted(edges, ref)
    groups = regroup(counts, group_bounds(counts, 10))
    assert groups.size == 10
    assert groups.sum() == 10_000
    assert np.all(np.abs(groups - 1000) <= 10)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_a_large_reference_takes_edges_from_a_sample_and_counts_every_value(name: str) -> None:
    from detectors.profile import EDGE_SAMPLE_PER_BIN, SAMPLED_EDGES_FACTOR, FeatureProfile

    n_bins = 100
    n = SAMPLED_EDGES_FACTOR * EDGE_SAMPLE_PER_BIN * n_bins + 1
    values = GENERATORS[name](np.random.default_rng(3), n)
    fp = FeatureProfile.fit_numeric("x", values, n_bins)
    exact = quantile_edges(np.sort(values), n_bins)
    assert np.array_equal(fp.counts, reference_cells(fp.edges, values))  # counts are exact on any edges
    assert (fp.minimum, fp.maximum) == (values.min(), values.max())
    if name == "integers":  # at most n_bins atoms: the full sort, every atom its own cell
        assert np.array_equal(fp.edges, exact)
        return
    assert not np.array_equal(fp.edges, exact)  # the sampled path was taken
    # each open cell holds about 1 / n_bins of the reference: within +-50% of it, never an empty half
    open_cells = fp.counts[2:-2:2] / n
    assert open_cells.max() < 1.5 / n_bins and open_cells.min() > 0.5 / n_bins
    if name == "mixed_atoms":  # a heavy atom stays an edge of its own cell
        assert 0.0 in fp.edges and fp.counts[2 * int(np.flatnonzero(fp.edges == 0.0)[0]) + 1] > 0.25 * n
