import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from detectors.boosting import MAX_BINS, GradientBoosting, bin_codes, bin_thresholds


def held_out_auc(model: str, x: np.ndarray, y: np.ndarray) -> float:
    half = x.shape[0] // 2
    if model == "sklearn":
        fitted = HistGradientBoostingClassifier(
            max_iter=30, max_leaf_nodes=8, learning_rate=0.1, early_stopping=False, random_state=0
        ).fit(x[:half], y[:half])
        scores = fitted.predict_proba(x[half:])[:, 1]
    else:
        scores = GradientBoosting().fit(x[:half], y[:half]).decision_function(x[half:])
    return float(roc_auc_score(y[half:], scores))


def case(name: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.permutation(np.repeat([0.0, 1.0], n // 2))
    a = rng.normal(size=n)
    if name == "correlation_flip":
        b = np.where(y == 1, -0.9, 0.9) * a + np.sqrt(0.19) * rng.normal(size=n)
        x = np.column_stack((a, b, rng.normal(size=n)))
    elif name == "small_shift":
        x = np.column_stack((a + 0.3 * y, rng.normal(size=(n, 5))))
    elif name == "missing_surge":
        x = rng.normal(size=(n, 3))
        x[rng.random(n) < np.where(y == 1, 0.3, 0.01), 0] = np.nan
    else:
        x = rng.normal(size=(n, 4))
    return x, y


@pytest.mark.parametrize("name", ["correlation_flip", "small_shift", "missing_surge", "null"])
def test_held_out_auc_matches_scikit_learn(name: str) -> None:
    """The domain classifier's model separates as well as the HistGradientBoostingClassifier it replaced."""
    ours, theirs = [], []
    for seed in range(5):
        x, y = case(name, np.random.default_rng(seed), 4000)
        ours.append(held_out_auc("ours", x, y))
        theirs.append(held_out_auc("sklearn", x, y))
    assert abs(np.mean(ours) - np.mean(theirs)) < 0.01
    if name == "null":
        assert abs(np.mean(ours) - 0.5) < 0.03


def test_bins_and_missing_codes() -> None:
    x = np.array([[1.0], [2.0], [np.nan], [4.0]])
    cuts = [bin_thresholds(x[:, 0])]
    assert bin_codes(x, cuts)[:, 0].tolist() == [0, 1, MAX_BINS, 2]
    many = np.random.default_rng(0).normal(size=10_000)
    assert bin_thresholds(many).size == MAX_BINS - 1  # quantile cuts between MAX_BINS bins


def test_missing_values_go_to_the_better_side() -> None:
    """Class 1 is low values or missing ones: one split separates the classes only if it sends the missing
    values left, with the low ones (sending them right, with the high ones, mixes the classes)."""
    rng = np.random.default_rng(3)
    y = np.repeat([0.0, 1.0], 1000)
    x = np.where(y == 1, rng.uniform(-3, -1, 2000), rng.uniform(1, 3, 2000))[:, None]
    x[1500:, 0] = np.nan  # half of class 1
    model = GradientBoosting(max_iter=1, max_leaf_nodes=2).fit(x, y)
    assert model.trees[0].left_na[0] is True
    scores = model.decision_function(x)
    assert scores[1500:].min() == scores[1000:1500].max() > scores[:1000].max()


def test_trees_respect_the_leaf_limits() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(500, 3)), (rng.random(500) < 0.5).astype(float)
    model = GradientBoosting(max_iter=5, max_leaf_nodes=4, min_samples_leaf=50).fit(x, y)
    for tree in model.trees:
        leaves = [i for i, f in enumerate(tree.feature) if f < 0]
        assert len(leaves) <= 4
    codes = bin_codes(x, model.thresholds)
    # every leaf of the first tree holds at least min_samples_leaf training rows (leaves by their value)
    _, per_leaf = np.unique(model.trees[0].predict(codes), return_counts=True)
    assert per_leaf.min() >= 50 and per_leaf.sum() == 500
