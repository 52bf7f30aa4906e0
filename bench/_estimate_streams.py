"""Generated streams for ``bench.estimate``: covariate shifts with P(y|x) fixed, and a concept shift.

The true concept is ``P(y=1|x) = sigmoid(k(x2) * (x1 - b))`` with ``k(x2) = 4 / (1 + x2**2)``: rows near
``x2 = 0`` are easy, rows with large ``|x2|`` or ``x1`` near the boundary ``b`` are hard. ``x3`` is a weak
feature and ``x4`` pure noise. The reference draws ``x1 ~ N(0, 1)``, ``x2 ~ N(0, 1.5)``, so every shifted
window below stays inside the region the model and the calibration saw (CBPE's stated assumption).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

FEATURES = ("x1", "x2", "x3", "x4")


@dataclass(frozen=True)
class Shape:
    """Input distribution and concept of one window."""

    x1_mean: float = 0.0
    x1_scale: float = 1.0
    x2_mean: float = 0.0
    x2_scale: float = 1.5
    boundary: float = 0.0  # moves only in the concept-shift stream


def draw(rng: np.random.Generator, n: int, shape: Shape) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` rows of features and labels drawn under ``shape``."""
    x1 = rng.normal(shape.x1_mean, shape.x1_scale, n)
    x2 = rng.normal(shape.x2_mean, shape.x2_scale, n)
    x3 = rng.normal(0.0, 1.0, n)
    x4 = rng.normal(0.0, 1.0, n)
    logit = 4.0 / (1.0 + x2**2) * (x1 - shape.boundary) + 0.5 * x3
    y = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "x4": x4}), y


def _ramp(i: int, start: int, length: int) -> float:
    """0 before ``start``, rising linearly to 1 over ``length`` windows."""
    return float(min(max((i - start + 1) / length, 0.0), 1.0))


def _harder_region(i: int) -> Shape:
    # the inputs drift towards large x2, where the label is barely predictable
    return Shape(x2_mean=2.2 * _ramp(i, 10, 10))


def _crowded_boundary(i: int) -> Shape:
    # the inputs concentrate near the decision boundary x1 = 0
    return Shape(x1_scale=1.0 - 0.65 * _ramp(i, 10, 10))


def _sudden_covariate(i: int) -> Shape:
    return Shape(x1_scale=0.5, x2_mean=1.0) if i >= 15 else Shape()


def _concept(i: int) -> Shape:
    # same inputs, new meaning: the boundary moves from x1 = 0 to x1 = 0.7
    return Shape(boundary=0.7 if i >= 15 else 0.0)


def _none(i: int) -> Shape:
    return Shape()


STREAMS: dict[str, tuple[str, Callable[[int], Shape]]] = {
    "harder-region": ("covariate", _harder_region),
    "crowded-boundary": ("covariate", _crowded_boundary),
    "sudden-covariate": ("covariate", _sudden_covariate),
    "concept": ("concept", _concept),
    "no-change": ("none", _none),
}
