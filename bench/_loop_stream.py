"""The replayed stream of `make bench-loop`: the built-in generator with drift at known windows."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from retrain.synthetic import FEATURES, TARGET, DriftPlan, generate


@dataclass(frozen=True)
class Scenario:
    """`windows` windows of `window_rows` rows; drift points are window indexes (None: never)."""

    windows: int = 40
    window_rows: int = 400
    concept_at: int = 5
    concept_until: int | None = None  # the concept reverts here (a second concept drift)
    covariate_at: int | None = 22  # a second, covariate drift on top of the flipped concept
    seed: int = 11

    def __post_init__(self) -> None:
        if not 0 < self.concept_at < self.windows:
            raise ValueError(f"concept_at must be in 1..{self.windows - 1}, got {self.concept_at}")
        if self.concept_until is not None and not self.concept_at < self.concept_until <= self.windows:
            raise ValueError(f"concept_until must be in {self.concept_at + 1}..{self.windows}")

    def _rows(self, window: int | None) -> int | None:
        return None if window is None else window * self.window_rows

    def plan(self) -> DriftPlan:
        return DriftPlan(
            concept_at=self._rows(self.concept_at),
            concept_until=self._rows(self.concept_until),
            covariate_at=self._rows(self.covariate_at),
        )

    def frame(self) -> pd.DataFrame:
        return generate(self.windows * self.window_rows, seed=self.seed, drift=self.plan())

    def phase(self, window: int) -> str:
        """What the traffic of `window` looks like compared with the bootstrap champion's training data."""
        flipped = self.concept_at <= window and (self.concept_until is None or window < self.concept_until)
        name = "flipped" if flipped else ("pre" if window < self.concept_at else "reverted")
        if self.covariate_at is not None and window >= self.covariate_at:
            name += "+cov"
        return name

    def describe(self) -> str:
        parts = [
            f"{self.windows} windows x {self.window_rows} rows (seed {self.seed})",
            f"concept flips at window {self.concept_at}",
        ]
        if self.concept_until is not None:
            parts.append(f"reverts at window {self.concept_until}")
        if self.covariate_at is not None:
            parts.append(f"covariate shift from window {self.covariate_at}")
        return ", ".join(parts)


def window_rows(
    frame: pd.DataFrame, scenario: Scenario, index: int
) -> tuple[list[dict[str, object]], list[int]]:
    """The feature records and true labels of window `index`."""
    chunk = frame.iloc[index * scenario.window_rows : (index + 1) * scenario.window_rows]
    records = [{str(k): v for k, v in r.items()} for r in chunk[list(FEATURES)].to_dict(orient="records")]
    return records, [int(y) for y in chunk[TARGET]]
