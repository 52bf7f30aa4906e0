import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from detectors.importance import ModelImportance, fit_importance, rank_drift
from detectors.results import FeatureDriftResult


@pytest.fixture(scope="module")
def importance() -> ModelImportance:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=5000), "b": rng.normal(size=5000), "c": rng.normal(size=5000)})
    y = (2 * X["a"] + X["b"] + rng.normal(size=5000) > 0).astype(int)
    # the model never looks at column c
    model = make_pipeline(ColumnTransformer([("keep", "passthrough", ["a", "b"])]), LogisticRegression())
    return fit_importance(model.fit(X, y), X, y, max_rows=1500, n_repeats=3, seed=1)


def drift(name: str, effect: float, flag: bool) -> FeatureDriftResult:
    return FeatureDriftResult(
        name, "numeric", "wasserstein", effect, effect, None, 0.1, flag, "drift" if flag else "no_drift",
        effect_size=effect,
    )  # fmt: skip


def test_importance_is_bounded_seeded_and_sees_the_ignored_column(importance: ModelImportance) -> None:
    shares = {f.feature: f.share for f in importance.features}
    assert importance.n_rows == 1500
    assert shares["c"] == 0.0 and shares["a"] > shares["b"] > 0.1
    assert sum(shares.values()) == pytest.approx(1.0)
    assert ModelImportance.from_dict(json.loads(json.dumps(importance.to_dict()))) == importance


def test_an_ignored_drifted_feature_ranks_last_and_the_sentence_says_so(importance: ModelImportance) -> None:
    r = rank_drift(importance, [drift("c", 0.9, True), drift("b", 0.2, True), drift("a", 0.01, False)])
    drifted = [c.feature for c in r.causes if c.is_drift]
    assert drifted == ["b", "c"]
    assert r.top == ("b",) and not r.barely_used
    assert r.sentence.startswith("The drift that matters to this model: b (")
    assert "barely used by the model: c." in r.sentence
    assert json.dumps(r.to_dict(), allow_nan=False)


def test_drift_only_in_unused_features_is_called_harmless(importance: ModelImportance) -> None:
    r = rank_drift(importance, [drift("c", 0.9, True), drift("a", 0.01, False), drift("b", 0.02, False)])
    assert r.barely_used and r.top == () and r.drifted_share == 0.0
    assert "the model barely uses it" in r.sentence
    assert [c.feature for c in r.causes][0] == "c"


def test_no_drift_and_unknown_features(importance: ModelImportance) -> None:
    assert rank_drift(importance, [drift("a", 0.01, False)]).sentence == "No feature drifted."
    r = rank_drift(importance, [drift("a", 0.3, True), drift("new_col", 0.5, True)])
    assert r.top == ("a",)
    assert "No importance measured for: new_col." in r.sentence
    assert [c.feature for c in r.causes] == ["a", "new_col"]


def test_numpy_input_names_columns_and_same_seed_same_result() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 2))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    one = fit_importance(model, X, y, max_rows=500, seed=3, scoring="roc_auc")
    assert [f.feature for f in one.features] == ["x0", "x1"] and one.scoring == "roc_auc"
    assert fit_importance(model, X, y, max_rows=500, seed=3, scoring="roc_auc") == one
