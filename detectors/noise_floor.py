"""The distance that sampling noise alone reaches at a window's size.

Evidently's distance thresholds (normalized Wasserstein 0.1, Jensen-Shannon 0.1) do not depend on the window
size, so a small window of undrifted traffic crosses them by chance: at 200 rows a fifth to a third of the
features (evidently#509). The noise floor is the ``1 - alpha`` quantile of the method's distance between the
reference and ``n`` rows drawn from the reference itself, simulated from the profile's cells; a distance
method flags drift only at ``max(threshold, floor)``. From a few thousand rows on the floor is below the
default thresholds, so well-sized windows decide exactly as Evidently does.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
from scipy.spatial import distance

from detectors.columns import FloatArray, IntArray
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
    if n >= len(ref):
        sims: IntArray = rng.multinomial(n, ref / total, size=draws).astype(np.int64)
    else:  # few rows over many cells: draw the rows and count them, cheaper than a multinomial per cell
        cells = np.searchsorted(np.cumsum(ref) / total, rng.random((draws, n)), side="right")
        cells = np.minimum(cells, len(ref) - 1) + np.arange(draws)[:, np.newaxis] * len(ref)
        sims = np.bincount(cells.ravel(), minlength=draws * len(ref)).reshape(draws, len(ref))
    return float(np.quantile(_distances(fp, method, sims, coarse_bins), 1.0 - alpha))


def _distances(fp: FeatureProfile, method: str, sims: IntArray, coarse_bins: int) -> FloatArray:
    """The method's distance for each simulated window; the default methods in one vectorized pass."""
    if fp.kind == "numeric" and method == "wasserstein":
        raw = wasserstein_binned_interior(fp.edges, fp.counts, sims)
        normed: FloatArray = raw / normalizer(fp.std or 0.0)
        return normed
    if fp.kind == "categorical" and method == "jensenshannon":
        ref = fp.category_counts.astype(np.float64)[np.newaxis, :]
        js: FloatArray = np.asarray(distance.jensenshannon(ref, sims.astype(np.float64), axis=1))
        return js
    n = int(sims[0].sum())
    out = np.empty(len(sims))
    for i, counts in enumerate(sims):
        summary: Summary
        if fp.kind == "numeric":
            summary = NumericSummary(n, 0, counts, 0.0, 0.0)
        else:
            summary = CategoricalSummary(
                n, 0, {c: int(k) for c, k in zip(fp.categories, counts, strict=True)}
            )
        out[i] = measure(fp, summary, method, coarse_bins=coarse_bins).statistic
    return out
