"""Isotonic calibration of predicted probabilities, kept only where it lowers the expected calibration error.

CBPE (``detectors.cbpe``) reads a calibrated probability as the chance that a row's label is that class, so
the probabilities must be calibrated on labeled reference rows first. As NannyML does, a calibrator is kept
only when it helps: on every held-out fold of a stratified split, an isotonic map fitted on the other
folds must give a lower expected calibration error (ECE, equal-count bins) than the raw probabilities;
otherwise the raw probabilities are used, because isotonic regression on a calibrated model only adds
fitting noise.

The fitted map is the isotonic regression's breakpoints, applied with linear interpolation and clipped at
the ends (what ``IsotonicRegression(out_of_bounds="clip").predict`` does), so it serializes as two arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from detectors.columns import FloatArray


@dataclass(frozen=True)
class IsotonicMap:
    """A monotone map from raw to calibrated probability: breakpoints ``x`` (increasing) and values ``y``."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __call__(self, proba: np.ndarray) -> FloatArray:
        """Calibrated probabilities; values outside ``[x[0], x[-1]]`` take the end values."""
        return np.interp(np.asarray(proba, dtype=np.float64), self.x, self.y)

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready dict of the two breakpoint arrays."""
        return {"x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IsotonicMap:
        """Inverse of ``to_dict``."""
        return cls(tuple(float(v) for v in data["x"]), tuple(float(v) for v in data["y"]))


def fit_isotonic(proba: np.ndarray, hit: np.ndarray) -> IsotonicMap:
    """Fit the isotonic regression of ``hit`` (0/1) on ``proba`` and keep its breakpoints.

    Examples
    --------
    >>> m = fit_isotonic(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 1, 0, 1]))
    >>> m(np.array([0.0, 0.5, 1.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    reg = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    reg.fit(np.asarray(proba, dtype=np.float64), np.asarray(hit, dtype=np.float64))
    return IsotonicMap(tuple(reg.X_thresholds_.tolist()), tuple(reg.y_thresholds_.tolist()))


def expected_calibration_error(proba: np.ndarray, hit: np.ndarray, n_bins: int = 10) -> float:
    """Weighted mean of ``|mean proba - mean hit|`` over ``n_bins`` equal-count bins of sorted ``proba``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=20_000)
    >>> y = rng.uniform(size=20_000) < p
    >>> round(expected_calibration_error(p, y), 2), round(expected_calibration_error(p**3, y), 2)
    (0.01, 0.25)
    """
    p = np.asarray(proba, dtype=np.float64)
    h = np.asarray(hit, dtype=np.float64)
    if p.size == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    bins = np.array_split(np.arange(p.size), min(n_bins, p.size))
    total = 0.0
    for idx in bins:
        rows = order[idx]
        total += rows.size * abs(float(p[rows].mean()) - float(h[rows].mean()))
    return total / p.size


@dataclass(frozen=True)
class CalibrationChoice:
    """The out-of-fold ECE with and without isotonic calibration, and the map kept (``None``: raw)."""

    ece_raw: float
    ece_calibrated: float
    calibrator: IsotonicMap | None


def choose_calibration(
    proba: np.ndarray, hit: np.ndarray, *, n_splits: int = 3, n_bins: int = 10, seed: int = 0
) -> CalibrationChoice:
    """Keep an isotonic map fitted on all rows only if it lowers the ECE on every held-out fold.

    On each of ``n_splits`` stratified folds a map fitted on the other folds must give the fold a lower ECE
    than its raw probabilities (NannyML's rule). Comparing per fold, not pooled, matters: pooled out-of-fold
    ECE favours isotonic even on calibrated probabilities. ``ece_raw`` and ``ece_calibrated`` are the fold
    means. A single-class ``hit`` or too few rows of either class to stratify keeps the raw probabilities.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> p = rng.uniform(size=5000)
    >>> y = rng.uniform(size=5000) < p
    >>> choose_calibration(p, y).calibrator is None  # already calibrated
    True
    >>> choose_calibration(p**3, y).calibrator is None  # too low: isotonic fixes it
    False
    """
    p = np.asarray(proba, dtype=np.float64)
    h = np.asarray(hit, dtype=np.int64)
    if min(int(h.sum()), int(h.size - h.sum())) < n_splits:
        ece = expected_calibration_error(p, h, n_bins)
        return CalibrationChoice(ece, ece, None)
    raw, cal = [], []
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for train, test in folds.split(p.reshape(-1, 1), h):
        raw.append(expected_calibration_error(p[test], h[test], n_bins))
        cal.append(expected_calibration_error(fit_isotonic(p[train], h[train])(p[test]), h[test], n_bins))
    keep = all(c < r for c, r in zip(cal, raw, strict=True))
    return CalibrationChoice(float(np.mean(raw)), float(np.mean(cal)), fit_isotonic(p, h) if keep else None)
