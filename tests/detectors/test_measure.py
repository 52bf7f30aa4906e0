import numpy as np
import pandas as pd
import pytest
from scipy import stats

from detectors.measure import measure
from detectors.profile import FeatureProfile
from detectors.window import summarize_categorical, summarize_numeric


def test_exact_path_equals_scipy_and_binned_path_reports_bound() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=800), rng.normal(0.3, 1, 600)
    fp = FeatureProfile.fit_numeric("x", ref, 1000)
    exact = measure(fp, summarize_numeric(fp, cur, 10_000), "ks", reference_values=ref)
    assert exact.exact and exact.error_bound is None
    assert exact.statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-9)
    assert exact.p_val == pytest.approx(stats.ks_2samp(ref, cur).pvalue, abs=1e-9)
    w = measure(fp, summarize_numeric(fp, cur, 10_000), "wasserstein", reference_values=ref)
    assert w.statistic == pytest.approx(stats.wasserstein_distance(ref, cur) / ref.std(), abs=1e-9)
    binned = measure(fp, summarize_numeric(fp, cur), "wasserstein")
    assert not binned.exact and binned.error_bound is not None
    assert abs(binned.statistic - w.statistic) <= binned.error_bound


def test_numeric_psi_and_js_use_coarse_bins() -> None:
    rng = np.random.default_rng(1)
    fp = FeatureProfile.fit_numeric("x", rng.normal(size=20_000), 1000)
    same = summarize_numeric(fp, rng.normal(size=20_000))
    moved = summarize_numeric(fp, rng.normal(1.0, 1, 20_000))
    assert measure(fp, same, "psi").statistic < 0.01 < 0.5 < measure(fp, moved, "psi").statistic
    assert measure(fp, same, "jensenshannon").statistic < 0.05 < measure(fp, moved, "jensenshannon").statistic


def test_categorical_methods_and_effect_size() -> None:
    fp = FeatureProfile.fit_categorical("c", {"a": 600, "b": 400}, 0)
    s = summarize_categorical(pd.Series(["a"] * 400 + ["b"] * 600))
    for method in ("chisquare", "z", "psi", "jensenshannon"):
        m = measure(fp, s, method)
        assert m.effect_size == pytest.approx(0.2)
    with pytest.raises(ValueError, match="valid: chisquare"):
        measure(fp, s, "ks")
