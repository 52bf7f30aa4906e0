from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import log_loss, roc_auc_score

from detectors.baseline_pool import pool_baselines
from detectors.performance_evidence import Baseline, baseline_from_rows, window_evidence
from detectors.performance_losses import auc_delong, per_row_losses

WINDOWS = 400
NULL_WINDOWS = 1000


def _at_most_alpha(breaches: int, alpha: float) -> bool:
    """At most ``alpha`` of the null windows, up to three binomial standard deviations of luck."""
    return breaches <= alpha * NULL_WINDOWS + 3 * np.sqrt(NULL_WINDOWS * alpha * (1 - alpha))


def _labels(rng: np.random.Generator, n: int, accuracy: float) -> tuple[np.ndarray, np.ndarray]:
    truth = rng.integers(0, 2, n)
    return truth, np.where(rng.random(n) < accuracy, truth, 1 - truth)


def _accuracy_baseline(rng: np.random.Generator, n: int, accuracy: float) -> Baseline:
    return baseline_from_rows("accuracy", *_labels(rng, n, accuracy))


def test_no_change_accuracy_windows_breach_at_most_at_alpha() -> None:
    rng = np.random.default_rng(20261201)
    p_values, breaches = [], 0
    for _ in range(NULL_WINDOWS):  # a fresh baseline per window: its sampling noise is part of the null
        baseline = _accuracy_baseline(rng, 1000, 0.83)
        ev = window_evidence("accuracy", *_labels(rng, 1000, 0.83), baseline, alpha=0.05, min_effect=0.0)
        p_values.append(ev.p_val)
        breaches += ev.is_breach
    assert _at_most_alpha(breaches, 0.05)
    assert stats.kstest(p_values, "uniform").statistic < 0.1  # p-values near uniform (Fisher: a bit high)
    with_floor = [
        window_evidence("accuracy", *_labels(rng, 1000, 0.83), _accuracy_baseline(rng, 1000, 0.83)).is_breach
        for _ in range(NULL_WINDOWS)
    ]
    assert _at_most_alpha(sum(with_floor), 0.01)  # the default alpha 0.01 and the 2-point floor


def test_four_point_drop_on_1000_rows_breaches_with_high_power() -> None:
    rng = np.random.default_rng(7)
    hits = [
        window_evidence("accuracy", *_labels(rng, 1000, 0.79), _accuracy_baseline(rng, 5000, 0.83)).is_breach
        for _ in range(WINDOWS)
    ]
    assert np.mean(hits) >= 0.65  # one window at alpha 0.01; K of M windows compound it


def test_tiny_drop_on_a_huge_window_is_significant_but_not_a_breach() -> None:
    rng = np.random.default_rng(3)
    baseline = Baseline("accuracy", 0.83, 200_000)
    ev = window_evidence("accuracy", *_labels(rng, 200_000, 0.825), baseline)
    assert ev.p_val < 0.01 and 0.0 < ev.effect < 0.02
    assert not ev.is_breach and "minimum effect" in ev.summary


def test_decisive_needs_tiny_p_and_three_times_the_minimum_effect() -> None:
    rng = np.random.default_rng(4)
    severe = window_evidence("accuracy", *_labels(rng, 1000, 0.55), Baseline("accuracy", 0.83, 4000))
    assert severe.is_breach and severe.is_decisive and severe.p_val < 1e-6 and "decisive" in severe.summary
    mild = window_evidence("accuracy", *_labels(rng, 1000, 0.77), Baseline("accuracy", 0.83, 4000))
    assert mild.is_breach and not mild.is_decisive  # p may be tiny, but 6 points < 3 x 2 points + noise
    better = window_evidence("accuracy", *_labels(rng, 1000, 0.90), Baseline("accuracy", 0.83, 4000))
    assert not better.is_breach and better.effect < 0 and better.p_val > 0.5


def test_exact_baseline_uses_the_binomial_test() -> None:
    truth = np.ones(100, dtype=int)
    pred = np.r_[np.ones(70, dtype=int), np.zeros(30, dtype=int)]
    ev = window_evidence("accuracy", truth, pred, Baseline("accuracy", 0.9, 0))
    assert ev.test == "binomial_exact"
    assert ev.p_val == pytest.approx(stats.binom.cdf(70, 100, 0.9))


def _regression_window(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=n)
    return 3.0 * x + rng.normal(scale=noise, size=n), 3.0 * x


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_error_metrics_are_calibrated_and_powerful(metric: str) -> None:
    rng = np.random.default_rng(11)
    null, drift = 0, 0
    for i in range(NULL_WINDOWS):
        baseline = baseline_from_rows(metric, *_regression_window(rng, 1000, 1.0))
        null += window_evidence(metric, *_regression_window(rng, 1000, 1.0), baseline, alpha=0.05,
                                min_effect=0.0).is_breach  # fmt: skip
        if i < WINDOWS:
            drift += window_evidence(metric, *_regression_window(rng, 1000, 1.2), baseline).is_breach
    assert _at_most_alpha(null, 0.05)
    assert drift / WINDOWS >= 0.8  # a 20% larger error, twice the 10% floor


def test_log_loss_and_auc_evidence() -> None:
    rng = np.random.default_rng(5)

    def window(n: int, signal: float) -> tuple[np.ndarray, np.ndarray]:
        truth = rng.integers(0, 2, n)
        score = 1 / (1 + np.exp(-(signal * (2 * truth - 1) + rng.normal(size=n))))
        return truth, score

    t, p = window(2000, 1.5)
    base_ll = baseline_from_rows("log_loss", t, None, proba=p)
    assert base_ll.value == pytest.approx(log_loss(t, p))
    base_auc = baseline_from_rows("roc_auc", t, None, proba=p)
    assert base_auc.value == pytest.approx(roc_auc_score(t, p)) and base_auc.n_positive == int(t.sum())
    same_t, same_p = window(1000, 1.5)
    worse_t, worse_p = window(1000, 0.7)
    for metric, base in (("log_loss", base_ll), ("roc_auc", base_auc)):
        assert not window_evidence(metric, same_t, None, base, proba=same_p).is_breach
        worse = window_evidence(metric, worse_t, None, base, proba=worse_p)
        assert worse.is_breach and worse.effect > 0.05, worse.summary


def test_delong_variance_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(8)
    pos = rng.random(60) < 0.4
    score = np.round(rng.normal(size=60) + pos, 1)  # rounded: ties count half
    x, y = score[pos], score[~pos]
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    expected = psi.mean(1).var(ddof=1) / len(x) + psi.mean(0).var(ddof=1) / len(y)
    auc, var = auc_delong(pos, score)
    assert auc == pytest.approx(psi.mean()) and var == pytest.approx(expected)


def test_bad_inputs_name_the_valid_values() -> None:
    with pytest.raises(ValueError, match="valid: accuracy, roc_auc, rmse, mae, log_loss"):
        window_evidence("f1", [1], [1], Baseline("f1", 0.5, 10))
    with pytest.raises(ValueError, match="per-row loss mean"):
        window_evidence("rmse", [1.0, 2.0], [1.0, 2.0], Baseline("rmse", 0.5, 10))
    with pytest.raises(ValueError, match="valid: rmse, mae, log_loss"):
        per_row_losses("r2", [1.0], [1.0])
    b = Baseline("rmse", 1.0, 10, loss_mean=1.0, loss_sd=0.5)
    assert Baseline.from_dict({**b.to_dict(), "extra": 1}) == b


def test_pooled_baseline_is_the_baseline_of_the_union() -> None:
    rng = np.random.default_rng(12)
    for metric in ("rmse", "mae"):
        a, b = _regression_window(rng, 300, 1.0), _regression_window(rng, 700, 1.3)
        pooled = pool_baselines(baseline_from_rows(metric, *a), baseline_from_rows(metric, *b))
        union = baseline_from_rows(metric, np.r_[a[0], b[0]], np.r_[a[1], b[1]])
        assert pooled.n == union.n == 1000
        assert pooled.value == pytest.approx(union.value) and pooled.loss_sd == pytest.approx(union.loss_sd)
    auc = Baseline("roc_auc", 0.8, 100, n_positive=40)
    assert pool_baselines(auc, Baseline("roc_auc", 0.7, 100, n_positive=50)) is auc
    with pytest.raises(ValueError, match="cannot pool"):
        pool_baselines(auc, Baseline("accuracy", 0.7, 100))


def test_pooling_clean_windows_keeps_the_test_calibrated_and_sharpens_it() -> None:
    rng = np.random.default_rng(13)
    false_alarms, checks, hits_pooled, hits_holdout = 0, 0, 0, 0
    for _ in range(40):  # 40 models, each with a 900-row holdout and 10 clean windows pooled one by one
        holdout = _accuracy_baseline(rng, 900, 0.83)
        pooled = holdout
        for _ in range(10):
            window = _labels(rng, 1000, 0.83)
            ev = window_evidence("accuracy", *window, pooled, alpha=0.05, min_effect=0.0)
            false_alarms += ev.is_breach
            checks += 1
            pooled = pool_baselines(pooled, baseline_from_rows("accuracy", *window))
        drifted = _labels(rng, 1000, 0.795)  # 3.5 points worse
        hits_pooled += window_evidence("accuracy", *drifted, pooled).is_breach
        hits_holdout += window_evidence("accuracy", *drifted, holdout).is_breach
    assert false_alarms <= 0.05 * checks + 3 * np.sqrt(checks * 0.05 * 0.95)
    assert hits_pooled >= hits_holdout + 5  # power from the larger baseline
