from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from retrain.errors import InvalidSetting
from retrain.evaluate import evaluate, evaluation_metrics, split_by_time
from retrain.synthetic import FEATURES, TARGET, TIMESTAMP, generate


def test_split_by_time_holds_out_the_most_recent_rows() -> None:
    df = generate(100, seed=2).sample(frac=1.0, random_state=0)  # shuffled: order must come from time
    train, holdout = split_by_time(df, time_column=TIMESTAMP, holdout_fraction=0.25)
    assert (len(train), len(holdout)) == (75, 25)
    assert train[TIMESTAMP].max() < holdout[TIMESTAMP].min()


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_by_time_rejects_bad_fractions(fraction: float) -> None:
    with pytest.raises(ValueError, match="holdout_fraction"):
        split_by_time(generate(10), time_column=TIMESTAMP, holdout_fraction=fraction)


def test_classifier_metrics_and_gate(demo_model: Pipeline, demo_data: pd.DataFrame) -> None:
    holdout = generate(800, seed=99)
    X, y = demo_data[list(FEATURES)], demo_data[TARGET]
    dummy = DummyClassifier(strategy="most_frequent").fit(X, y)
    good_vs_dummy = evaluate(dummy, demo_model, holdout, features=FEATURES, target=TARGET, metric="roc_auc")
    assert set(good_vs_dummy.challenger_metrics) == {"accuracy", "f1", "roc_auc", "log_loss"}
    assert good_vs_dummy.passed and good_vs_dummy.improvement > 0.2
    assert good_vs_dummy.n_holdout == 800

    by_log_loss = evaluate(demo_model, dummy, holdout, features=FEATURES, target=TARGET, metric="log_loss")
    assert by_log_loss.challenger_score > by_log_loss.champion_score  # larger loss ...
    assert not by_log_loss.passed and not by_log_loss.higher_is_better  # ... is worse

    same = evaluate(demo_model, demo_model, holdout, features=FEATURES, target=TARGET)
    assert not same.passed, "a tie must not promote"
    huge_margin = evaluate(dummy, demo_model, holdout, features=FEATURES, target=TARGET, margin=0.9)
    assert not huge_margin.passed
    flat = evaluation_metrics(good_vs_dummy)
    assert flat["challenger_roc_auc"] == good_vs_dummy.challenger_score


def test_regressor_metrics_lower_is_better() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=400)})
    frame["y"] = 3.0 * frame["x"] + rng.normal(scale=0.1, size=400)
    train, holdout = frame.iloc[:300], frame.iloc[300:]
    linear = LinearRegression().fit(train[["x"]], train["y"])
    mean = DummyRegressor().fit(train[["x"]], train["y"])
    result = evaluate(mean, linear, holdout, features=["x"], target="y", metric="rmse")
    assert set(result.champion_metrics) == {"rmse", "mae", "r2"}
    assert result.challenger_score < result.champion_score and result.passed
    reverse = evaluate(linear, mean, holdout, features=["x"], target="y", metric="mae")
    assert not reverse.passed


def test_unknown_or_inapplicable_metric_is_rejected(demo_model: Pipeline) -> None:
    holdout = generate(50, seed=5)
    with pytest.raises(ValueError, match="choose one of"):
        evaluate(demo_model, demo_model, holdout, features=FEATURES, target=TARGET, metric="precision@k")
    with pytest.raises(InvalidSetting, match="not computable"):
        evaluate(demo_model, demo_model, holdout, features=FEATURES, target=TARGET, metric="rmse")


class _Constant:
    """A duck-typed classifier (no sklearn base class) answering fixed labels, to pin accuracies exactly."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.answers[: len(X)])


def test_margin_is_inclusive_despite_float_rounding() -> None:
    # 1000 rows, so that the 10 rows won are also significant for the paired test
    holdout = pd.DataFrame({"x": range(1000), "y": [1] * 1000})
    champion = _Constant([1] * 20 + [0] * 980)  # accuracy 0.02
    challenger = _Constant([1] * 30 + [0] * 970)  # accuracy 0.03: exactly 0.01 better
    result = evaluate(champion, challenger, holdout, features=["x"], target="y", margin=0.01)
    assert result.passed
    assert not evaluate(champion, challenger, holdout, features=["x"], target="y", margin=0.011).passed
