"""Built-in tabular data set with injectable covariate and concept drift.

The demo, the tests and the benchmarks all draw from this generator, so nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

NUMERIC_FEATURES: tuple[str, ...] = ("age", "income", "tenure_months", "balance", "num_products")
CATEGORICAL_FEATURES: tuple[str, ...] = ("region", "channel", "plan")
FEATURES: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES
TARGET = "target"
TIMESTAMP = "timestamp"

_REGIONS = ("north", "south", "east", "west")
_REGION_P = (0.4, 0.3, 0.2, 0.1)
_DRIFTED_REGION_P = (0.1, 0.2, 0.3, 0.4)
_CHANNELS = ("web", "app", "branch")
_PLANS = ("basic", "plus", "premium")


@dataclass(frozen=True)
class DriftPlan:
    """Where drift starts, counted in rows from the start of the stream.

    `covariate_at` shifts `income` and `balance` by `covariate_shift` standard deviations and reverses the
    region mix; `concept_at` flips the sign of the income and tenure effects on the target.
    `covariate_until` / `concept_until` end the drift (traffic returns to normal).
    """

    covariate_at: int | None = None
    covariate_until: int | None = None
    covariate_shift: float = 1.0
    concept_at: int | None = None
    concept_until: int | None = None


def _active(index: np.ndarray, start: int | None, end: int | None) -> np.ndarray:
    if start is None:
        return np.zeros(index.shape, dtype=bool)
    mask = index >= start
    if end is not None:
        mask &= index < end
    return mask


def generate(
    n_rows: int,
    *,
    seed: int = 0,
    drift: DriftPlan | None = None,
    offset: int = 0,
    start: datetime | None = None,
    interval_seconds: float = 1.0,
) -> pd.DataFrame:
    """Generate `n_rows` rows of features, a binary `target` and a `timestamp`.

    `offset` is the index of the first row in the whole stream, so consecutive calls with growing offsets
    continue one stream and drift points keep their meaning.

    Examples
    --------
    >>> df = generate(1000, seed=1)
    >>> sorted(df.columns) == sorted((*FEATURES, TARGET, TIMESTAMP))
    True
    >>> bool(0.2 < df[TARGET].mean() < 0.8)
    True
    """
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    plan = drift or DriftPlan()
    rng = np.random.default_rng(seed + offset * 7919)
    index = np.arange(offset, offset + n_rows)
    covariate = _active(index, plan.covariate_at, plan.covariate_until)
    concept = _active(index, plan.concept_at, plan.concept_until)

    age = np.clip(rng.normal(42.0, 12.0, n_rows), 18, 90).round()
    income = rng.lognormal(10.6, 0.45, n_rows)
    tenure = rng.gamma(2.0, 18.0, n_rows).round()
    balance = rng.normal(5000.0, 2500.0, n_rows) + 0.05 * income
    products = rng.poisson(1.8, n_rows) + 1
    shift = plan.covariate_shift
    income = np.where(covariate, income * np.exp(0.45 * shift), income)
    balance = np.where(covariate, balance + shift * 2500.0, balance)

    region = np.where(
        covariate,
        rng.choice(_REGIONS, n_rows, p=_DRIFTED_REGION_P),
        rng.choice(_REGIONS, n_rows, p=_REGION_P),
    )
    channel = rng.choice(_CHANNELS, n_rows, p=(0.5, 0.35, 0.15))
    plan_tier = rng.choice(_PLANS, n_rows, p=(0.6, 0.3, 0.1))

    z_income = (np.log(income) - 10.6) / 0.45
    z_tenure = (tenure - 36.0) / 25.0
    sign = np.where(concept, -1.0, 1.0)
    logit = (
        sign * (1.6 * z_income - 1.2 * z_tenure)
        + 0.03 * (age - 42.0)
        + 0.4 * (products - 2.8)
        + np.select([region == "north", region == "west"], [0.5, -0.5], 0.0)
        + np.select([plan_tier == "premium", plan_tier == "basic"], [0.8, -0.3], 0.0)
        + np.where(channel == "app", 0.3, 0.0)
    )
    target = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    t0 = start or datetime(2026, 1, 1, tzinfo=UTC)
    timestamps = [t0 + timedelta(seconds=float(i * interval_seconds)) for i in range(offset, offset + n_rows)]
    return pd.DataFrame(
        {
            "age": age,
            "income": income.round(2),
            "tenure_months": tenure,
            "balance": balance.round(2),
            "num_products": products.astype(np.int64),
            "region": region.astype(object),
            "channel": channel.astype(object),
            "plan": plan_tier.astype(object),
            TARGET: target,
            TIMESTAMP: pd.to_datetime(timestamps, utc=True),
        }
    )
