import numpy as np
import pytest

from detectors.check import CheckOptions, run_check
from detectors.multivariate import domain_classifier, encode
from detectors.profile import ReferenceProfile


def correlated(rng: np.random.Generator, n: int, sign: float) -> dict[str, np.ndarray]:
    a = rng.normal(size=n)
    b = sign * 0.9 * a + np.sqrt(1 - 0.81) * rng.normal(size=n)
    return {"a": a, "b": b, "c": rng.normal(size=n)}


def test_correlation_flip_caught_by_classifier_missed_by_every_feature() -> None:
    rng = np.random.default_rng(0)
    profile = ReferenceProfile.fit(correlated(rng, 20_000, 1.0))
    result = run_check(profile, correlated(rng, 20_000, -1.0))
    assert result.drifted_features == ()
    assert result.multivariate is not None and result.multivariate.is_drift
    assert result.multivariate.auc > 0.8
    assert result.dataset_drift and result.status == "drift"
    assert result.multivariate.n_reference == result.multivariate.n_current == 2000


def test_same_distribution_is_not_drift() -> None:
    rng = np.random.default_rng(1)
    res = domain_classifier(correlated(rng, 3000, 1.0), correlated(rng, 3000, 1.0))
    assert not res.is_drift and abs(res.auc - 0.5) < 0.05
    assert res.to_dict()["method"] == "domain_classifier"


def test_categorical_columns_are_encoded() -> None:
    rng = np.random.default_rng(2)
    ref = {"c": rng.choice(np.array(["x", "y"], dtype=object), 2000), "n": rng.normal(size=2000)}
    cur = {"c": rng.choice(np.array(["x", "z"], dtype=object), 2000), "n": rng.normal(size=2000)}
    res = domain_classifier(ref, cur, categories={"c": ["x", "y"]})
    assert res.is_drift
    assert encode(np.array([None, "y"], dtype=object), ["x", "y"])[1] == 1.0


def test_bad_max_rows() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        domain_classifier({"a": np.zeros(3)}, {"a": np.zeros(3)}, max_rows=2)
    with pytest.raises(ValueError):
        CheckOptions(multivariate_max_rows=2)


def test_small_clean_windows_rarely_false_alarm() -> None:
    """A monitor runs the classifier on every window: on small clean windows it must stay quiet (pooled
    out-of-fold scores of several models once flagged about half of the 200-row windows)."""
    rng = np.random.default_rng(7)
    reference = correlated(rng, 5000, 1.0)
    alarms = sum(domain_classifier(reference, correlated(rng, 200, 1.0), seed=i).is_drift for i in range(60))
    assert alarms <= 3  # at most 5% of 60 windows


def test_small_window_with_a_flipped_correlation_is_still_caught() -> None:
    rng = np.random.default_rng(8)
    res = domain_classifier(correlated(rng, 5000, 1.0), correlated(rng, 500, -1.0))
    assert res.is_drift and res.auc > 0.8
