import dataclasses
import json

import numpy as np
import pytest
from sklearn import metrics
from sklearn.naive_bayes import GaussianNB

from detectors.cbpe import CBPE
from detectors.estimated import CBPE_LIMITS


def draw(rng: np.random.Generator, n: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """P(y=1|x) = sigmoid(2 x1 - x2) always; ``scale < 1`` crowds the inputs towards the boundary (harder)."""
    x1, x2 = rng.normal(0, scale, n), rng.normal(0, scale, n)
    # near-duplicate columns make naive Bayes overconfident, so calibration has work to do
    x = np.column_stack([x1, x2, x1 + rng.normal(0, 0.3, n), x2 + rng.normal(0, 0.3, n)])
    return x, (rng.uniform(size=n) < 1 / (1 + np.exp(-(2 * x1 - x2)))).astype(int)


@pytest.fixture(scope="module")
def fitted() -> tuple[GaussianNB, CBPE]:
    rng = np.random.default_rng(0)
    model = GaussianNB().fit(*draw(rng, 10_000))
    x, y = draw(rng, 5000)
    return model, CBPE.fit(y, model.predict_proba(x)[:, 1], model.predict(x))


def test_reference_metrics_are_the_realized_ones() -> None:
    rng = np.random.default_rng(1)
    p = rng.dirichlet([1, 1, 1], size=2000)
    y = np.array([rng.choice(3, p=row) for row in p])
    pred = p.argmax(axis=1)
    est = CBPE.fit(y, p, pred, classes=[0, 1, 2])
    assert est.reference["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred))
    assert est.reference["f1"] == pytest.approx(metrics.f1_score(y, pred, average="macro"))
    assert est.reference["precision"] == pytest.approx(metrics.precision_score(y, pred, average="macro"))
    assert est.reference["recall"] == pytest.approx(metrics.recall_score(y, pred, average="macro"))
    assert est.reference["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, p, multi_class="ovr"))
    # calibrated Dirichlet probabilities: every class keeps its raw probabilities
    assert est.calibrators == (None, None, None)


def test_overconfident_model_is_calibrated_and_that_fixes_the_estimate(
    fitted: tuple[GaussianNB, CBPE],
) -> None:
    model, est = fitted
    assert est.calibrators[0] is not None
    assert est.ece_calibrated[0] < est.ece_raw[0]
    raw = dataclasses.replace(est, calibrators=(None,))
    x, y = draw(np.random.default_rng(2), 20_000, scale=0.5)
    realized = metrics.accuracy_score(y, model.predict(x))
    proba, pred = model.predict_proba(x)[:, 1], model.predict(x)
    assert abs(est.estimate(proba, pred).metric("accuracy").value - realized) < 0.015
    assert abs(raw.estimate(proba, pred).metric("accuracy").value - realized) > 0.04


def test_estimate_tracks_a_seeded_covariate_shift(fitted: tuple[GaussianNB, CBPE]) -> None:
    model, est = fitted
    rng = np.random.default_rng(3)
    acc_err, auc_err, realized = [], [], []
    for scale in np.linspace(1.0, 0.3, 15):
        x, y = draw(rng, 1000, scale)
        proba, pred = model.predict_proba(x)[:, 1], model.predict(x)
        r = est.estimate(proba, pred)
        realized.append(metrics.accuracy_score(y, pred))
        acc_err.append(abs(r.metric("accuracy").value - realized[-1]))
        auc_err.append(abs(r.metric("roc_auc").value - metrics.roc_auc_score(y, proba)))
    assert realized[0] - realized[-1] > 0.1  # the shift does hurt
    assert np.mean(acc_err) <= 0.02
    assert np.mean(auc_err) <= 0.03


def test_three_se_band_covers_the_realized_accuracy() -> None:
    rng = np.random.default_rng(4)
    ref = rng.uniform(size=5000)
    est = CBPE.fit((rng.uniform(size=5000) < ref).astype(int), ref, (ref > 0.5).astype(int))
    inside, half_width = [], []
    for i in range(300):
        # windows drift between easy (scores near 0 or 1) and hard (scores near 0.5) mixtures
        p = rng.beta(0.5 + i / 100, 0.5 + i / 100, size=1000)
        y = rng.uniform(size=1000) < p
        a = est.estimate(p, (p > 0.5).astype(int), n_boot=0).metric("accuracy")
        realized = float(np.mean(y == (p > 0.5)))
        inside.append(a.lower <= realized <= a.upper)
        half_width.append((a.upper - a.lower) / 2)
    assert np.mean(inside) >= 0.9
    assert np.mean(half_width) < 0.05  # a band this narrow can miss


def test_json_round_trip_keeps_labels_and_estimates(fitted: tuple[GaussianNB, CBPE]) -> None:
    model, _ = fitted
    x, y = draw(np.random.default_rng(5), 3000)
    names = np.array(["stay", "churn"])
    est = CBPE.fit(names[y], model.predict_proba(x)[:, 1], names[model.predict(x)], classes=["stay", "churn"])
    again = CBPE.from_dict(json.loads(json.dumps(est.to_dict(), allow_nan=False)))
    assert again == est
    xw, _ = draw(np.random.default_rng(6), 1000, 0.6)
    pw, pred = model.predict_proba(xw)[:, 1], names[model.predict(xw)]
    assert again.estimate(pw, pred) == est.estimate(pw, pred)
    assert json.dumps(est.estimate(pw, pred).to_dict(), allow_nan=False)


def test_small_window_is_insufficient_and_every_run_says_its_limits(fitted: tuple[GaussianNB, CBPE]) -> None:
    model, est = fitted
    x, _ = draw(np.random.default_rng(7), 20)
    r = est.estimate(model.predict_proba(x)[:, 1], model.predict(x))
    assert r.status == "insufficient_data" and r.metrics == ()
    assert r.limits == CBPE_LIMITS and "concept drift" in r.limits


def test_bad_inputs_name_what_is_valid(fitted: tuple[GaussianNB, CBPE]) -> None:
    _, est = fitted
    with pytest.raises(ValueError, match="not among the classes"):
        est.estimate(np.full(100, 0.3), np.full(100, 7))
    with pytest.raises(ValueError, match="one column per class"):
        est.estimate(np.full((100, 3), 0.3))
    with pytest.raises(ValueError, match="not a CBPE document"):
        CBPE.from_dict({"method": "dle"})


def test_multiclass_overconfident_model_is_calibrated_and_estimated() -> None:
    rng = np.random.default_rng(8)

    def window(n: int, concentration: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        true_p = rng.dirichlet([concentration] * 3, size=n)
        y = (rng.uniform(size=(n, 1)) > np.cumsum(true_p, axis=1)).sum(axis=1)
        sharp = true_p**2 / (true_p**2).sum(axis=1, keepdims=True)  # the model is overconfident
        return sharp, sharp.argmax(axis=1), y

    proba, pred, y = window(6000, 1.0)
    est = CBPE.fit(y, proba, pred, classes=[0, 1, 2])
    raw = dataclasses.replace(est, calibrators=(None, None, None))
    assert all(m is not None for m in est.calibrators)
    for concentration in (1.0, 2.0):  # 2.0: flatter probabilities, a harder window
        proba, pred, y = window(4000, concentration)
        r = est.estimate(proba, pred)
        realized = metrics.accuracy_score(y, pred)
        # one-vs-rest isotonic maps renormalized per row (NannyML's way) leave a point or two of bias
        assert abs(r.metric("accuracy").value - realized) < 0.035
        assert abs(raw.estimate(proba, pred).metric("accuracy").value - realized) > 0.1
        assert abs(r.metric("f1").value - metrics.f1_score(y, pred, average="macro")) < 0.035
        assert abs(r.metric("roc_auc").value - metrics.roc_auc_score(y, proba, multi_class="ovr")) < 0.035
        assert np.sum(r.confusion_matrix) == pytest.approx(4000)
    assert CBPE.from_dict(json.loads(json.dumps(est.to_dict()))) == est
