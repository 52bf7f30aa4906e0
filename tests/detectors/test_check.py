import json

import numpy as np
import pandas as pd
import pytest

from detectors.check import CheckOptions, run_check
from detectors.profile import ReferenceProfile

FAST = CheckOptions(multivariate=False)


def data(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(shift, 1, n),
            "b": rng.normal(0, 1, n),
            "c": rng.choice(["x", "y", "z"], n),
            "d": rng.exponential(1 + shift, n),
        }
    )


def test_result_schema_is_stable_json() -> None:
    result = run_check(ReferenceProfile.fit(data(3000, 0)), data(2000, 1, 1.0))
    doc = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(doc) >= {"status", "dataset_drift", "drift_share", "n_reference", "n_current", "features"}
    assert set(doc["features"][0]) >= {
        "name",
        "kind",
        "method",
        "statistic",
        "p_val",
        "threshold",
        "is_drift",
    }
    assert doc["multivariate"]["method"] == "domain_classifier"
    assert doc["status"] == "drift" and doc["dataset_drift"] is True
    assert result.drifted_features == ("a", "d") and result.drift_share == 0.5
    assert all(isinstance(f.is_drift, bool) for f in result.features)


def test_small_reference_uses_p_value_tests_and_corrections_report_thresholds() -> None:
    profile = ReferenceProfile.fit(data(800, 0))
    cur = data(800, 1, 0.3)
    plain = run_check(profile, cur, options=FAST)
    assert [f.method for f in plain.features] == ["ks", "ks", "chisquare", "ks"]
    assert all(f.exact for f in plain.features)
    bonf = run_check(profile, cur, options=CheckOptions(correction="bonferroni", multivariate=False))
    assert {f.threshold for f in bonf.features} == {0.05 / 4}
    fdr = run_check(profile, cur, options=CheckOptions(correction="fdr", multivariate=False))
    for f in fdr.features:
        assert f.p_val is not None and (f.p_val <= f.threshold) == f.is_drift


def test_method_and_threshold_overrides() -> None:
    opts = CheckOptions(
        methods={"a": "psi", "c": "psi"},
        thresholds={"psi": 0.15, "a": 0.2, "wasserstein": 0.5},
        multivariate=False,
    )
    result = run_check(ReferenceProfile.fit(data(3000, 0)), data(3000, 1, 0.3), options=opts)
    by = {f.name: f for f in result.features}
    assert (by["a"].method, by["a"].threshold) == ("psi", 0.2)
    assert (by["c"].method, by["c"].threshold) == ("psi", 0.15)
    assert (by["b"].method, by["b"].threshold) == ("wasserstein", 0.5)


def test_insufficient_data_below_min_rows() -> None:
    result = run_check(ReferenceProfile.fit(data(3000, 0)), data(50, 1, 3.0))
    assert result.status == "insufficient_data" and not result.dataset_drift
    assert {f.status for f in result.features} == {"insufficient_data"}
    assert result.multivariate is None
    cur = data(500, 1)
    cur.loc[cur.index[:450], "a"] = np.nan  # only 50 values left in one feature
    partial = run_check(ReferenceProfile.fit(data(3000, 0)), cur, options=FAST)
    # too few values for a drift test, but 90% missing is a data-quality breach (1 of 4 features changed)
    a = partial.features[0]
    assert a.method == "none" and not a.is_drift and a.status == "data_quality" and a.missing_is_drift
    assert partial.status == "no_drift" and partial.data_quality and partial.drift_share == 0.25
    assert "missing_rate_increase" in partial.features[0].quality_issues


def test_quality_fields_reach_the_result() -> None:
    cur = data(2000, 1)
    cur.loc[cur.index[:200], "b"] = 50.0
    cur.loc[cur.index[:100], "c"] = "new"
    result = run_check(ReferenceProfile.fit(data(3000, 0)), cur, options=FAST)
    by = {f.name: f for f in result.features}
    assert by["b"].out_of_range_share == pytest.approx(0.1, abs=0.005)
    assert "out_of_range" in by["b"].quality_issues
    assert by["c"].unseen_categories == ("new",) and by["c"].unseen_share == pytest.approx(0.05)


def test_prediction_drift_and_performance() -> None:
    rng = np.random.default_rng(0)
    ref = data(3000, 0)
    ref["y"] = rng.integers(0, 2, 3000)
    ref["pred"] = ref["y"]
    profile = ReferenceProfile.fit(
        ref, prediction_columns=["pred"], target="y", reference_performance={"accuracy": 1.0}
    )
    cur = data(3000, 1)
    cur["y"] = rng.integers(0, 2, 3000)
    cur["pred"] = (rng.random(3000) < 0.9).astype(int)
    result = run_check(profile, cur, options=FAST)
    assert result.predictions[0].role == "prediction" and result.prediction_drift
    assert result.performance is not None and result.performance.is_drift
    assert result.to_dict()["performance"]["metric"] == "accuracy"


def test_validation_errors_name_valid_values() -> None:
    profile = ReferenceProfile.fit(data(500, 0))
    with pytest.raises(ValueError, match="valid: none, bonferroni, fdr"):
        CheckOptions(correction="holm")
    with pytest.raises(ValueError, match="valid features: a, b, c, d"):
        run_check(profile, data(500, 1), options=CheckOptions(methods={"zz": "ks"}))
    with pytest.raises(ValueError, match="valid: chisquare"):
        run_check(profile, data(500, 1), options=CheckOptions(methods={"c": "ks"}))
    with pytest.raises(ValueError, match="lacks reference column"):
        run_check(profile, data(500, 1).drop(columns="b"))
    with pytest.raises(ValueError, match="must be numeric"):
        run_check(profile, data(500, 1).assign(a="text"))
    with pytest.raises(ValueError, match="drift_share"):
        CheckOptions(drift_share=0.0)


def test_comparing_never_sorts_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = ReferenceProfile.fit(data(20_000, 0), sample_size=1000)

    def no_sort(*args: object, **kwargs: object) -> None:
        raise AssertionError("sorted during a check")

    monkeypatch.setattr(np, "sort", no_sort)
    monkeypatch.setattr(np, "quantile", no_sort)
    result = run_check(profile, data(200_000, 1, 0.5), options=FAST)
    assert result.drifted_features == ("a", "d")
