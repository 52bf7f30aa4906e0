import numpy as np
import pandas as pd

from detectors.profile import FeatureProfile
from detectors.quality import assess
from detectors.window import summarize_categorical, summarize_numeric


def test_numeric_out_of_range_and_missing() -> None:
    fp = FeatureProfile.fit_numeric("x", np.arange(100.0), 10)
    values = np.concatenate((np.arange(90.0), [-5.0, 500.0], [np.nan] * 8))
    q = assess(fp, summarize_numeric(fp, values))
    assert q.missing_rate_ref == 0.0 and q.missing_rate_cur == 0.08
    assert q.out_of_range_share == 2 / 92
    assert q.issues == ("missing_rate_increase", "out_of_range")
    assert assess(fp, summarize_numeric(fp, np.arange(50.0))).issues == ()


def test_tolerances_are_configurable() -> None:
    fp = FeatureProfile.fit_categorical("c", {"a": 1}, 0)
    s = summarize_categorical(pd.Series(["a"] * 98 + ["b", "c"]))
    assert assess(fp, s).issues == ("unseen_categories",)
    assert assess(fp, s, unseen_tolerance=0.05).issues == ()
    assert assess(fp, s).unseen_categories == ("b", "c")
