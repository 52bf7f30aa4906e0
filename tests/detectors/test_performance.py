import numpy as np
import pytest
from sklearn import metrics

from detectors.performance import classification_metrics, compare_performance, regression_metrics


def test_classification_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    proba = np.clip(y * 0.6 + rng.uniform(0, 0.4, 500), 0.01, 0.99)
    pred = (proba > 0.5).astype(int)
    m = classification_metrics(y, pred, proba=proba)
    assert m["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(metrics.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, proba))
    assert m["log_loss"] == pytest.approx(metrics.log_loss(y, proba))


def test_multiclass_uses_macro_f1_and_proba_columns() -> None:
    y = np.array(["a", "b", "c", "a", "b", "c"])
    pred = np.array(["a", "b", "b", "a", "c", "c"])
    proba = np.full((6, 3), 0.1) + np.eye(3)[[0, 1, 2, 0, 1, 2]] * 0.7
    m = classification_metrics(y, pred, proba=proba, labels=["a", "b", "c"])
    assert m["f1"] == pytest.approx(metrics.f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(1.0)


def test_regression_and_comparison_directions() -> None:
    assert regression_metrics([0.0, 0.0], [3.0, 4.0])["rmse"] == pytest.approx(np.sqrt(12.5))
    worse = compare_performance({"rmse": 12.0}, {"rmse": 10.0}, metric="rmse", tolerance=0.1, relative=True)
    assert worse.is_drift and worse.degraded and worse.threshold == pytest.approx(11.0)
    ok = compare_performance({"accuracy": 0.88}, {"accuracy": 0.9}, tolerance=0.05)
    assert not ok.is_drift and ok.status == "no_drift"
    assert ok.to_dict()["delta"] == pytest.approx(-0.02)
    with pytest.raises(ValueError, match="valid: accuracy"):
        compare_performance({}, {}, metric="auc")


def test_sampling_slack_shrinks_with_window_size() -> None:
    from detectors.performance import compare_performance

    drop = {"accuracy": 0.82}, {"accuracy": 0.90}
    assert not compare_performance(*drop, tolerance=0.05, n_current=150).is_drift  # 2 se = 0.049
    assert compare_performance(*drop, tolerance=0.05, n_current=20_000).is_drift
    assert compare_performance(*drop, tolerance=0.05).is_drift  # no window size: tolerance alone
