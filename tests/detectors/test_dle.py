import json

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from detectors.dle import DLE
from detectors.estimated import DLE_LIMITS, estimated_breach


def draw(rng: np.random.Generator, n: int, x2_mean: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """y = x0 + noise whose size grows with |x1|: moving x1 away from 0 makes the model worse."""
    x = np.column_stack([rng.normal(size=n), rng.normal(x2_mean, 1.0, n)])
    return x, x[:, 0] + rng.normal(size=n) * (0.2 + 0.5 * np.abs(x[:, 1]))


@pytest.fixture(scope="module")
def fitted() -> tuple[LinearRegression, DLE]:
    rng = np.random.default_rng(0)
    model = LinearRegression().fit(*draw(rng, 3000))
    x, y = draw(rng, 3000)
    return model, DLE.fit(x, y, model.predict(x), n_trees=60)


def test_estimate_tracks_a_covariate_shift(fitted: tuple[LinearRegression, DLE]) -> None:
    model, dle = fitted
    rng = np.random.default_rng(1)
    errors, realized = [], []
    for mean in np.linspace(0.0, 1.5, 8):
        x, y = draw(rng, 1000, mean)
        pred = model.predict(x)
        r = dle.estimate(x, pred)
        realized.append(np.sqrt(np.mean((y - pred) ** 2)))
        errors.append(abs(r.metric("rmse").value - realized[-1]) / realized[-1])
        assert abs(r.metric("mae").value - np.mean(np.abs(y - pred))) < 0.1 * np.mean(np.abs(y - pred))
    assert realized[-1] > 1.5 * realized[0]  # the shift does hurt
    assert np.mean(errors) < 0.08


def test_breach_on_a_worse_region_and_not_on_the_reference(fitted: tuple[LinearRegression, DLE]) -> None:
    model, dle = fitted
    rng = np.random.default_rng(2)
    same, _ = draw(rng, 1000)
    worse, _ = draw(rng, 1000, 1.5)
    assert not estimated_breach(
        dle.estimate(same, model.predict(same)).metric("mae"), min_effect=0.1
    ).is_drift
    b = estimated_breach(dle.estimate(worse, model.predict(worse)).metric("mae"), min_effect=0.1)
    assert b.is_drift and b.effect > 0.3


def test_json_round_trip_and_limits(fitted: tuple[LinearRegression, DLE]) -> None:
    model, dle = fitted
    again = DLE.from_dict(json.loads(json.dumps(dle.to_dict(), allow_nan=False)))
    assert again == dle
    x, _ = draw(np.random.default_rng(3), 500, 1.0)
    r = again.estimate(x, model.predict(x))
    assert r == dle.estimate(x, model.predict(x))
    assert r.limits == DLE_LIMITS and r.status == "estimated"
    assert dle.estimate(x[:10], model.predict(x[:10])).status == "insufficient_data"
    with pytest.raises(ValueError, match="finite numeric"):
        dle.estimate(np.full((100, 2), np.nan), np.zeros(100))
