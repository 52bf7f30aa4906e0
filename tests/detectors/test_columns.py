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
