import json

import numpy as np
import pandas as pd
import pytest

from detectors.profile import FeatureProfile, ReferenceProfile


def frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n)
    age[:30] = np.nan
    return pd.DataFrame(
        {
            "age": age,
            "rooms": rng.integers(1, 5, n),  # numeric dtype, 4 distinct values -> categorical
            "city": rng.choice(["a", "b", None], n),
            "score": rng.integers(0, 100, n),
            "pred": rng.integers(0, 2, n),
            "y": rng.integers(0, 2, n),
        }
    )


def test_kinds_are_inferred_and_overridable() -> None:
    p = ReferenceProfile.fit(frame(), prediction_columns=["pred"], target="y")
    assert p.feature_names == ["age", "rooms", "city", "score"]
    assert {k: f.kind for k, f in p.features.items()} == {
        "age": "numeric",
        "rooms": "categorical",
        "city": "categorical",
        "score": "numeric",
    }
    assert list(p.predictions) == ["pred"] and p.target == "y"
    forced = ReferenceProfile.fit(frame(), columns=["age", "score"], categorical=["score"])
    assert forced.features["score"].kind == "categorical"
    assert forced.features["age"].kind == "numeric"


def test_numeric_profile_contents() -> None:
    p = ReferenceProfile.fit(frame())
    age = p.features["age"]
    values = frame()["age"].dropna().to_numpy()
    assert (age.n, age.n_missing) == (2970, 30)
    assert age.missing_rate == pytest.approx(0.01)
    assert age.mean == pytest.approx(values.mean()) and age.std == pytest.approx(values.std())
    assert (age.minimum, age.maximum) == (values.min(), values.max())
    assert age.edges[0] == values.min() and age.edges[-1] == values.max()
    assert age.counts.sum() == 2970
    assert p.features["city"].n_missing == pytest.approx(1000, abs=100)


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def test_json_round_trip_is_lossless() -> None:
    p = ReferenceProfile.fit(
        frame(), prediction_columns=["pred"], target="y", reference_performance={"f1": 0.5}
    )
    text = p.to_json()
    json.loads(text, parse_constant=_not_json)  # strict JSON: json.loads alone accepts NaN / Infinity
    assert any(v is None for v in json.loads(text)["sample"]["age"])  # the missing ages, as null
    q = ReferenceProfile.from_json(text)
    assert q.to_dict() == p.to_dict()
    assert np.array_equal(q.features["age"].edges, p.features["age"].edges)
    assert np.array_equal(q.sample["age"], p.sample["age"], equal_nan=True)
    assert q.reference_performance == {"f1": 0.5}


def test_sample_is_bounded_and_joint() -> None:
    data = {"x": np.arange(10_000.0), "y": np.arange(10_000.0) * 2}
    p = ReferenceProfile.fit(data, sample_size=500)
    assert not p.sample_complete and p.n_rows == 10_000
    assert p.sample["x"].size == 500
    assert np.array_equal(p.sample["y"], p.sample["x"] * 2)  # rows stay aligned across columns
    assert ReferenceProfile.fit(data, sample_size=10_000).sample_complete


def test_mapping_input_and_errors() -> None:
    p = ReferenceProfile.fit({"c": np.array(["x", "y", "x"], dtype=object), "n": np.arange(3.0)})
    assert p.features["c"].categories == ("x", "y")
    with pytest.raises(ValueError, match="unknown columns"):
        ReferenceProfile.fit({"a": np.arange(3.0)}, columns=["b"])
    with pytest.raises(ValueError, match="different lengths"):
        ReferenceProfile.fit({"a": np.arange(3.0), "b": np.arange(4.0)})
    with pytest.raises(ValueError, match="valid: numeric, categorical"):
        FeatureProfile.from_dict({**p.features["n"].to_dict(), "kind": "text"})
    with pytest.raises(ValueError, match="format_version"):
        ReferenceProfile.from_dict({**p.to_dict(), "format_version": 99})
