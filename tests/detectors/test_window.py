import numpy as np
import pandas as pd
import pytest

from detectors.profile import FeatureProfile
from detectors.window import aligned_counts, summarize, summarize_categorical, summarize_numeric


def test_numeric_summary_counts_tails_and_values() -> None:
    fp = FeatureProfile.fit_numeric("x", np.linspace(-3, 3, 1001), 100)  # reference range [-3, 3]
    assert (fp.edges[0], fp.edges[-1]) == (-3.0, 3.0)
    inside = np.linspace(-2.9, 2.9, 500)
    cur = np.concatenate((inside, [np.nan, -10.0, -4.0, 10.0]))
    s = summarize_numeric(fp, cur, keep_values_up_to=1000)
    assert (s.n, s.n_missing) == (503, 1)
    assert s.counts.sum() == 503
    assert (s.counts[0], s.counts[-1], s.out_of_range) == (2, 1, 3)  # below -3: -10, -4; above 3: 10
    assert s.low_tail == pytest.approx(7.0 + 1.0) and s.high_tail == pytest.approx(7.0)  # distances past
    assert s.values is not None and s.values.size == 503
    assert summarize_numeric(fp, cur).values is None  # large windows keep counts only


def test_summaries_of_chunks_add_up() -> None:
    rng = np.random.default_rng(1)
    fp = FeatureProfile.fit_numeric("x", rng.normal(size=5000), 200)
    cur = rng.normal(0.5, 2, 4000)
    whole = summarize_numeric(fp, cur)
    a, b = summarize_numeric(fp, cur[:1500]), summarize_numeric(fp, cur[1500:])
    assert np.array_equal(whole.counts, a.counts + b.counts)
    assert np.isclose(whole.high_tail, a.high_tail + b.high_tail)


def test_categorical_alignment_puts_unseen_last() -> None:
    fp = FeatureProfile.fit_categorical("c", {"a": 5, "b": 3}, 0)
    s = summarize_categorical(pd.Series(["b", "z", "z", None]))
    ref, cur, unseen = aligned_counts(fp, s)
    assert ref.tolist() == [5, 3, 0] and cur.tolist() == [0, 1, 2] and unseen == ["z"]
    assert summarize(fp, pd.Series(["a"])).n == 1
