import json

from detectors.results import DatasetDriftResult, FeatureDriftResult, jsonable


def test_jsonable_replaces_non_finite_and_tuples() -> None:
    assert jsonable({"a": (1.0, float("inf")), "b": float("nan")}) == {"a": [1.0, None], "b": None}


def test_feature_result_to_dict_is_strict_json() -> None:
    f = FeatureDriftResult("x", "categorical", "chisquare", float("inf"), None, 0.0, 0.05, True, "drift")
    d = f.to_dict()
    assert d["statistic"] is None and d["is_drift"] is True
    json.dumps(d, allow_nan=False)
    r = DatasetDriftResult("drift", True, 1.0, 10, 10, (f,))
    assert r.drifted_features == ("x",) and r.to_dict()["multivariate"] is None
