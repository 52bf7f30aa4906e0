"""The distance that sampling noise alone reaches at a window's size.

Evidently's distance thresholds (normalized Wasserstein 0.1, Jensen-Shannon 0.1) do not depend on the window
size, so a small window of undrifted traffic crosses them by chance: at 200 rows a fifth to a third of the
features (evidently#509). The noise floor is the ``1 - alpha`` quantile of the method's distance between two
undrifted samples of the reference's and the window's sizes, both simulated from the profile's cells; a
distance method flags drift only at ``max(threshold, floor)``. Redrawing the reference matters for sparse
categories: 500 Zipf-distributed categories seen in 20k reference rows are themselves noisy, and a floor
that took the observed shares as the truth flagged a quarter of undrifted 2k-row windows. From a few
thousand rows on the floor of numeric and few-category features is below the default thresholds, so
well-sized windows decide exactly as Evidently does.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from detectors.columns import FloatArray, IntArray
from detectors.jensenshannon import js_distances
from detectors.measure import measure
from detectors.profile import FeatureProfile
from detectors.wasserstein import normalizer, wasserstein_binned_interior
from detectors.window import CategoricalSummary, NumericSummary, Summary


def noise_floor(
    fp: FeatureProfile,
    method: str,
    n: int,
    *,
    alpha: float = 0.01,
    draws: int = 200,
    seed: int = 0,
    coarse_bins: int = 10,
) -> float:
    """The ``1 - alpha`` quantile of ``method``'s distance for ``n`` undrifted rows.

    Parameters
    ----------
    fp : FeatureProfile
        The reference column; draws follow its cells (numeric) or categories.
    method : str
        A distance method (``wasserstein``, ``jensenshannon``, ``psi``).
    n : int
        Non-missing rows in the window.
    alpha : float
        Chance that an undrifted window's distance exceeds the floor.
    draws : int
        Simulated windows.
    seed : int
        Seed of the draws, so a check is reproducible.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> fp = FeatureProfile.fit_numeric("x", rng.normal(size=5000), n_bins=100)
    >>> small, large = noise_floor(fp, "wasserstein", 100), noise_floor(fp, "wasserstein", 10_000)
    >>> bool(small > 0.1 > large)
    True
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    key = (_fingerprint(fp), method, n, alpha, draws, seed, coarse_bins)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    floor = _simulate(fp, method, n, alpha, draws, seed, coarse_bins)
    _CACHE[key] = floor
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return floor


# A monitor checks windows of one size against one reference again and again, loading the profile anew each
# time: keyed by the profile's content, the ~30 ms per feature is paid once per reference and window size.
_CACHE: OrderedDict[tuple[object, ...], float] = OrderedDict()
_CACHE_SIZE = 4096


def _fingerprint(fp: FeatureProfile) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{fp.kind}|{fp.std}|{fp.categories!r}".encode())
    for array in (fp.edges, fp.counts, fp.category_counts):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.digest()


def _simulate(
    fp: FeatureProfile, method: str, n: int, alpha: float, draws: int, seed: int, coarse_bins: int
) -> float:
    ref = fp.counts if fp.kind == "numeric" else fp.category_counts
    total = int(ref.sum())
    if total == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    probs = null_frequencies(fp, n, draws, rng)
    # the reference is a sample too: both sides are redrawn, so the floor holds over references as well
    refs: IntArray = rng.multinomial(total, probs, size=None if probs.ndim == 2 else draws).astype(np.int64)
    if probs.ndim == 2 or n >= len(ref):
        sims: IntArray = rng.multinomial(n, probs, size=None if probs.ndim == 2 else draws).astype(np.int64)
    else:  # few rows over many cells: draw the rows and count them, cheaper than a multinomial per cell
        cells = np.searchsorted(np.cumsum(probs), rng.random((draws, n)), side="right")
        cells = np.minimum(cells, len(ref) - 1) + np.arange(draws)[:, np.newaxis] * len(ref)
        sims = np.bincount(cells.ravel(), minlength=draws * len(ref)).reshape(draws, len(ref))
    return _upper_quantile(_distances(fp, method, refs, sims, coarse_bins), 1.0 - alpha)


def _upper_quantile(values: FloatArray, q: float) -> float:
    """``np.quantile(values, q)`` (linear) by partial selection: a check never sorts (the tests hold it)."""
    pos = q * (values.size - 1)
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    part = np.partition(values, [lo, hi])
    return float(part[lo] + (pos - lo) * (part[hi] - part[lo]))


def null_frequencies(fp: FeatureProfile, n: int, draws: int, rng: np.random.Generator) -> FloatArray:
    """Cell or category frequencies that undrifted data may have, given the reference's counts.

    Numeric cells are many and well filled, so their observed shares are used as they are. Categories can be
    sparse (a long tail of a few rows each), where the observed share is itself noisy: each draw takes its
    frequencies from the Dirichlet posterior (Jeffreys prior, ``counts + 0.5``), one row per draw. Categories
    too rare to be in the reference still show up in windows: they get the Good-Turing mass (the share of
    categories seen once), spread over at least Chao1's count of unseen categories and thinly enough that an
    ``n``-row window sees each about once (a long tail looks new to a small reference).

    Examples
    --------
    >>> fp = FeatureProfile.fit_categorical("c", {"a": 90, "b": 9, "c": 1}, n_missing=0)
    >>> probs = null_frequencies(fp, 100, 3, np.random.default_rng(0))
    >>> probs.shape, bool(np.allclose(probs.sum(axis=1), 1.0))
    ((3, 4), True)
    """
    if fp.kind == "numeric":
        shares: FloatArray = fp.counts / fp.counts.sum()
        return shares
    counts = fp.category_counts
    posterior: FloatArray = rng.dirichlet(counts + 0.5, size=draws)
    tail = float(np.sum(counts == 1)) / float(counts.sum())
    unseen = max(unseen_categories(counts), int(np.ceil(n * tail)))
    if unseen == 0:
        return posterior
    return np.hstack((posterior * (1.0 - tail), np.full((draws, unseen), tail / unseen)))


def unseen_categories(counts: IntArray) -> int:
    """Chao1's bias-corrected estimate of the categories the reference did not see, ``f1 (f1 - 1) / (2 (f2 +
    1))`` for ``f1`` categories seen once and ``f2`` seen twice.

    Examples
    --------
    >>> unseen_categories(np.array([50, 1, 1, 1, 2])), unseen_categories(np.array([50, 20]))
    (2, 0)
    """
    f1, f2 = int(np.sum(counts == 1)), int(np.sum(counts == 2))
    return int(np.ceil(f1 * (f1 - 1) / (2 * (f2 + 1))))


def _distances(
    fp: FeatureProfile, method: str, refs: IntArray, sims: IntArray, coarse_bins: int
) -> FloatArray:
    """The method's distance between each simulated reference and window (row by row); the default
    methods in one vectorized pass."""
    if fp.kind == "numeric" and method == "wasserstein":
        raw = wasserstein_binned_interior(fp.edges, refs, sims)
        normed: FloatArray = raw / normalizer(fp.std or 0.0)
        return normed
    if fp.kind == "categorical" and method == "jensenshannon":
        return js_distances(refs, sims)
    n = int(sims[0].sum())
    out = np.empty(len(sims))
    for i, (ref, counts) in enumerate(zip(refs, sims, strict=True)):
        summary: Summary
        if fp.kind == "numeric":
            drawn = replace(fp, counts=ref)
            summary = NumericSummary(n, 0, counts, 0.0, 0.0)
        else:  # the simulated unseen categories get names no real value has
            extra = tuple(_Unseen(k) for k in range(len(ref) - len(fp.categories)))
            drawn = replace(fp, categories=(*fp.categories, *extra), category_counts=ref)
            summary = CategoricalSummary(
                n, 0, {c: int(k) for c, k in zip(drawn.categories, counts, strict=True)}
            )
        out[i] = measure(drawn, summary, method, coarse_bins=coarse_bins).statistic
    return out


@dataclass(frozen=True)
class _Unseen:
    index: int
