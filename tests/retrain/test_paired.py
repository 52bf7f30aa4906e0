from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from retrain.baseline import holdout_baseline
from retrain.errors import InvalidSetting
from retrain.evaluate import evaluate, evaluation_metrics
from retrain.paired import mcnemar, paired_bootstrap


class _Fixed:
    """A duck-typed model answering fixed outputs, to pin the paired rows exactly."""

    def __init__(self, answers: np.ndarray) -> None:
        self.answers = answers

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.answers[: len(X)]


def _holdout(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    return pd.DataFrame({"x": np.arange(n), "y": truth}), truth


def _answers(truth: np.ndarray, wrong: np.ndarray) -> _Fixed:
    return _Fixed(np.where(wrong, 1 - truth, truth))


def test_a_tie_is_rejected() -> None:
    holdout, truth = _holdout(300)
    wrong = np.random.default_rng(1).random(300) < 0.2
    tie = evaluate(_answers(truth, wrong), _answers(truth, wrong), holdout, features=["x"], target="y")
    assert not tie.passed and tie.paired is not None
    assert tie.paired.p_val == 1.0 and tie.paired.discordant == (0, 0)


def test_a_tiny_win_is_rejected_and_a_real_win_promoted() -> None:
    holdout, truth = _holdout(1000)
    rng = np.random.default_rng(2)
    wrong = rng.random(1000) < 0.2
    one_more = wrong.copy()
    one_more[np.flatnonzero(wrong)[0]] = False  # 0.001 better: one row
    tiny = evaluate(_answers(truth, wrong), _answers(truth, one_more), holdout, features=["x"], target="y")
    assert tiny.improvement == pytest.approx(0.001) and not tiny.passed
    assert tiny.paired is not None and tiny.paired.test == "mcnemar_exact" and tiny.paired.p_val == 0.5
    fixed = wrong & (rng.random(1000) < 0.7)  # fixes ~6 points of the champion's errors
    real = evaluate(_answers(truth, wrong), _answers(truth, fixed), holdout, features=["x"], target="y")
    assert real.passed and real.paired is not None and real.paired.p_val < 1e-6
    assert real.paired.n == 1000 and real.paired.champion_score == real.champion_score
    assert evaluation_metrics(real)["paired_p_value"] == real.paired.p_val
    assert "real win" in real.paired.summary


def test_a_coin_flip_on_rmse_is_rejected_a_real_win_promoted() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=300)})
    frame["y"] = 2.0 * frame["x"] + rng.normal(size=300)
    base = 2.0 * frame["x"].to_numpy()
    noise = rng.normal(scale=0.05, size=300)
    champion, tiny = _Fixed(base + noise), _Fixed(base + noise * 0.98)  # rmse about 0.001 apart
    coin = evaluate(champion, tiny, frame, features=["x"], target="y", metric="rmse")
    assert 0 < coin.improvement < 0.002 and not coin.passed
    assert coin.paired is not None and coin.paired.test == "paired_bootstrap" and coin.paired.p_val > 0.05
    bad = _Fixed(base + rng.normal(scale=1.0, size=300))
    real = evaluate(bad, LinearRegression().fit(frame[["x"]], frame["y"]), frame, features=["x"], target="y",
                    metric="rmse")  # fmt: skip
    assert real.passed and real.paired is not None and real.paired.p_val < 0.01
    assert real.paired.n_resamples == 2000


@pytest.mark.parametrize("metric", ["roc_auc", "log_loss", "f1"])
def test_bootstrap_metrics_of_classifiers(metric: str) -> None:
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    X["y"] = (X["a"] + 0.5 * rng.normal(size=600) > 0).astype(int)
    good = LogisticRegression().fit(X[["a", "b"]], X["y"])
    weak = LogisticRegression().fit(X[["b"]].assign(a=0.0)[["a", "b"]], X["y"])  # sees noise only
    result = evaluate(weak, good, X, features=["a", "b"], target="y", metric=metric, n_resamples=300)
    assert result.passed and result.paired is not None and result.paired.p_val < 0.01
    # the resampled metric is the same metric as the gate's score (numpy re-implementations for speed)
    assert result.paired.challenger_score == pytest.approx(result.challenger_score)
    assert result.paired.champion_score == pytest.approx(result.champion_score)
    same = evaluate(good, good, X, features=["a", "b"], target="y", metric=metric, n_resamples=300)
    assert not same.passed


def test_seeded_bootstrap_is_reproducible_and_alpha_none_is_the_margin_rule() -> None:
    errors_a, errors_b = np.random.default_rng(5).normal(size=(2, 200))

    def mae(e: np.ndarray):  # type: ignore[no-untyped-def]
        return lambda rows: float(np.abs(e[rows]).mean())

    runs = [paired_bootstrap("mae", mae(errors_a), mae(errors_b), 200, higher_is_better=False, seed=9)
            for _ in range(2)]  # fmt: skip
    assert runs[0] == runs[1]
    holdout, truth = _holdout(100)
    wrong = np.zeros(100, dtype=bool)
    wrong[:2] = True
    legacy = evaluate(_answers(truth, wrong), _answers(truth, wrong & False), holdout, features=["x"],
                      target="y", alpha=None)  # fmt: skip
    assert legacy.passed and legacy.paired is None  # 2 rows won: only the margin rule passes it
    with pytest.raises(ValueError, match="alpha must be in"):
        mcnemar(np.ones(3, bool), np.ones(3, bool), alpha=0.0)
    with pytest.raises(InvalidSetting):
        evaluate(_answers(truth, wrong), _answers(truth, wrong), holdout, features=["x"], target="y",
                 metric="nope")  # fmt: skip


def test_holdout_baseline_per_metric() -> None:
    rng = np.random.default_rng(6)
    X = pd.DataFrame({"a": rng.normal(size=400)})
    X["y"] = (X["a"] + rng.normal(size=400) > 0).astype(int)
    model = LogisticRegression().fit(X[["a"]], X["y"])
    for metric in ("accuracy", "log_loss", "roc_auc"):
        baseline = holdout_baseline(model, X, features=["a"], target="y", metric=metric)
        assert baseline is not None and baseline.n == 400
        scored = evaluate(model, model, X, features=["a"], target="y", metric=metric, alpha=None)
        assert baseline.value == pytest.approx(scored.champion_score)
    assert holdout_baseline(model, X, features=["a"], target="y", metric="f1") is None
    assert holdout_baseline(_Fixed(np.zeros(400)), X, features=["a"], target="y", metric="roc_auc") is None
