import numpy as np
import pandas as pd
import pytest

from detectors.columns import as_float, get_column, is_numeric, row_count, to_python, value_counts


def test_numeric_detection_and_conversion() -> None:
    assert is_numeric(pd.Series([1, 2])) and not is_numeric(pd.Series([True, False]))
    assert np.isnan(as_float(pd.Series([1, None], dtype="Int64"), "x")[1])
    assert np.isnan(as_float(pd.Series([1.0, None], dtype=object), "x")[1])
    with pytest.raises(ValueError, match="must be numeric"):
        as_float(pd.Series(["a"]), "x")


def test_mapping_helpers() -> None:
    data = {"a": np.array([1, 1, 2])}
    assert row_count(data) == 3 and row_count(pd.DataFrame(data)) == 3
    assert value_counts(get_column(data, "a")) == {1: 2, 2: 1}
    assert type(to_python(np.int64(3))) is int


def test_lazy_columns_are_read_once_by_the_fit_and_once_by_the_check() -> None:
    """A lazily read table holds one column at a time only if the profile and the check read each once."""
    from detectors.check import CheckOptions, run_check
    from detectors.columns import LazyColumns
    from detectors.profile import ReferenceProfile

    rng = np.random.default_rng(0)
    ref = {"a": rng.normal(size=8000), "b": rng.normal(size=8000), "c": rng.choice(["x", "y"], 8000)}
    cur = {"a": rng.normal(0.5, 1, 8000), "b": rng.normal(size=8000), "c": rng.choice(["x", "y"], 8000)}
    loads: list[str] = []

    def lazy(data: dict[str, np.ndarray]) -> LazyColumns:
        return LazyColumns(list(data), 8000, lambda name: loads.append(name) or data[name])

    profile = ReferenceProfile.fit(lazy(ref), prediction_columns=["b"])
    assert sorted(loads) == ["a", "b", "c"]
    assert ReferenceProfile.fit(ref, prediction_columns=["b"]).to_dict() == profile.to_dict()
    loads.clear()
    result = run_check(profile, lazy(cur), options=CheckOptions(seed=3))
    assert sorted(loads) == ["a", "b", "c"]
    assert result.to_dict() == run_check(profile, cur, options=CheckOptions(seed=3)).to_dict()
    assert result.multivariate is not None and result.drifted_features == ("a",)
