"""Streams for the loop bench with abrupt *concept-only* drift: the features never change, only P(y|x).

Features ``x0..x4`` are i.i.d. uniform on [0, 1] in every window. A classifier stream labels a row by
``x0 > t0`` (flipped when ``p0``) where ``x2 < 0.5`` and by ``x1 > t1`` (flipped when ``p1``) elsewhere, with
15% label noise (the best possible accuracy is 0.85). A drift flips a half (severe: the labels of half the
rows invert) or moves the thresholds (mild: 7% of the rows change label); a model of the old concept loses
0.7 x (the share of rows that changed) accuracy points. The regression stream's target is a linear function of
the features plus noise whose coefficients change at a drift. Each stream comes with a user's own model
(a DecisionTree classifier, a gradient-boosted regressor; not the demo's logistic regression) fitted on
``initial_rows`` rows of the first concept, of which the newest ``holdout_fraction`` are its holdout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.tree import DecisionTreeClassifier

FEATURES: tuple[str, ...] = ("x0", "x1", "x2", "x3", "x4")
TARGET = "y"
SEQ = "seq"  # row number in the stream: the time column
LABEL_NOISE = 0.15

#: (t0, t1, p0, p1) per concept of the classifier streams; (a0, a1, a2, bias) of the regression stream
CONCEPTS: dict[str, tuple[tuple[float, ...], ...]] = {
    # half the rows invert at each drift: accuracy ~0.84 -> ~0.5
    "severe": ((0.5, 0.5, 0, 0), (0.5, 0.5, 1, 0), (0.5, 0.5, 1, 1)),
    # both thresholds move by 0.07, 7% of the rows change label: accuracy ~0.83 -> ~0.78
    "mild": ((0.5, 0.5, 0, 0), (0.57, 0.43, 0, 0), (0.64, 0.36, 0, 0)),
    "null": ((0.5, 0.5, 0, 0),),
    "regression": ((4.0, 2.0, 0.0, 0.0), (4.0, -2.0, 1.5, 1.0), (1.0, -2.0, 1.5, 2.5)),
}


@dataclass(frozen=True)
class ConceptStream:
    """``windows`` windows of ``window_rows`` rows; ``drifts`` are the windows where a new concept starts."""

    name: str
    windows: int = 30
    window_rows: int = 1000
    drifts: tuple[int, ...] = (10, 20)
    seed: int = 5
    initial_rows: int = 5000
    holdout_fraction: float = 0.2
    concepts: tuple[tuple[float, ...], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.name not in CONCEPTS:
            raise ValueError(f"unknown stream {self.name!r}; valid: {', '.join(CONCEPTS)}")
        if not self.concepts:
            object.__setattr__(self, "concepts", CONCEPTS[self.name])
        if self.name == "null":
            object.__setattr__(self, "drifts", ())
        if len(self.drifts) != len(self.concepts) - 1:
            raise ValueError(f"{len(self.concepts)} concepts need {len(self.concepts) - 1} drift windows")
        if any(not 0 < d < self.windows for d in self.drifts) or list(self.drifts) != sorted(self.drifts):
            raise ValueError(f"drift windows must be increasing in 1..{self.windows - 1}, got {self.drifts}")

    @property
    def task(self) -> str:
        return "regression" if self.name == "regression" else "classification"

    @property
    def metric(self) -> str:
        return "rmse" if self.task == "regression" else "accuracy"

    def concept_of(self, window: int) -> int:
        return sum(window >= d for d in self.drifts)

    def frame(self) -> pd.DataFrame:
        """The whole stream: ``SEQ``, ``FEATURES`` and ``TARGET``, window ``i`` = rows of ``window(i)``."""
        concept = np.repeat([self.concept_of(w) for w in range(self.windows)], self.window_rows)
        return self._rows(concept, np.random.default_rng(self.seed), offset=0)

    def initial(self) -> pd.DataFrame:
        """Rows of the first concept before the stream: the user's training data (negative ``SEQ``)."""
        rng = np.random.default_rng(self.seed + 1)
        return self._rows(np.zeros(self.initial_rows, dtype=int), rng, offset=-self.initial_rows)

    def window(self, frame: pd.DataFrame, index: int) -> pd.DataFrame:
        return frame.iloc[index * self.window_rows : (index + 1) * self.window_rows]

    def user_model(self) -> Any:
        """The user's own (unfitted) model for this stream."""
        if self.task == "regression":
            return GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=0)
        return DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, random_state=0)

    def fit_user_model(self) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
        """The user's model fitted on the oldest rows of :meth:`initial`, with (train, holdout) frames: what
        a live replay registers as the champion (training data = its reference, target ``TARGET``)."""
        rows = self.initial()
        cut = len(rows) - round(len(rows) * self.holdout_fraction)
        train, holdout = rows.iloc[:cut], rows.iloc[cut:]
        return self.user_model().fit(train[list(FEATURES)], train[TARGET]), train, holdout

    def records(self, frame: pd.DataFrame, index: int) -> tuple[list[dict[str, object]], list[Any]]:
        """Feature records (for ``/v1/predict``) and true labels of window ``index``, like
        ``bench._loop_stream.window_rows``."""
        chunk = self.window(frame, index)
        records: list[dict[str, object]] = [
            {str(k): float(v) for k, v in r.items()} for r in chunk[list(FEATURES)].to_dict("records")
        ]
        cast = float if self.task == "regression" else int
        return records, [cast(y) for y in chunk[TARGET]]

    def describe(self) -> str:
        drift = f"concept drifts at windows {', '.join(map(str, self.drifts))}" if self.drifts else "no drift"
        return f"{self.name}: {self.windows} windows x {self.window_rows} rows (seed {self.seed}), {drift}"

    def _rows(self, concept: np.ndarray, rng: np.random.Generator, offset: int) -> pd.DataFrame:
        n = len(concept)
        x = rng.random((n, len(FEATURES)))
        params = np.array(self.concepts)[concept]
        if self.task == "regression":
            signal = (params[:, :3] * x[:, :3]).sum(axis=1) + params[:, 3]
            y: np.ndarray = signal + np.sin(6.0 * x[:, 3]) + rng.normal(scale=0.5, size=n)
        else:
            first = (x[:, 0] > params[:, 0]) ^ (params[:, 2] > 0)
            second = (x[:, 1] > params[:, 1]) ^ (params[:, 3] > 0)
            clean = np.where(x[:, 2] < 0.5, first, second)
            y = (clean ^ (rng.random(n) < LABEL_NOISE)).astype(np.int64)
        frame = pd.DataFrame(x, columns=list(FEATURES))
        frame.insert(0, SEQ, np.arange(offset, offset + n))
        frame[TARGET] = y
        return frame


STREAMS: tuple[str, ...] = ("severe", "mild", "regression", "null")
