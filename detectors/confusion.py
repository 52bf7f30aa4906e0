"""Confusion-matrix metrics shared by realized and expected (CBPE) performance, and their sampling errors.

A realized confusion matrix counts rows by (true, predicted) class; CBPE's expected one adds each row's
calibrated class probabilities to the column of its predicted class. Every metric here is computed from
either, so realized and estimated values are the same function of their matrix. Binary metrics are those of
the second class (``classes[1]``, the positive one, as ``detectors.performance`` does); multiclass ones are
macro averages (ROC AUC one-vs-rest).

Sampling errors follow NannyML: a few standard deviations measured on the labeled reference, scaled to a
window of ``n`` rows as ``std / sqrt(n * fraction)``, ``fraction`` being the share of rows a metric depends
on (predicted positives for precision, true positives for recall). ROC AUC uses DeLong's two placement
variances, one per class side; a multiclass macro metric's error is ``sqrt(sum of squares) / K``.
"""

from __future__ import annotations

import numpy as np

from detectors.columns import FloatArray, IntArray

METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")
# per metric, per class group, the (std, fraction) terms whose variances add
SamplingTerms = tuple[tuple[tuple[float, float], ...], ...]


def one_hot(index: IntArray, k: int) -> FloatArray:
    """Rows of the ``k x k`` identity picked by ``index``."""
    return np.eye(k, dtype=np.float64)[index]


def confusion(truth: FloatArray, pred: IntArray) -> FloatArray:
    """``(K, K)`` matrix, rows true and columns predicted; ``truth`` is one-hot or class probabilities."""
    return truth.T @ one_hot(pred, truth.shape[1])


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    # sklearn's zero_division=0: a class never predicted (or never true) scores 0
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def matrix_metrics(cm: FloatArray) -> dict[str, float]:
    """Accuracy, and F1, precision and recall (positive class if binary, else macro) of a confusion matrix.

    Examples
    --------
    >>> cm = np.array([[50.0, 10.0], [5.0, 35.0]])
    >>> {k: round(v, 3) for k, v in matrix_metrics(cm).items()}
    {'accuracy': 0.85, 'f1': 0.824, 'precision': 0.778, 'recall': 0.875}
    """
    return {k: float(v[0]) for k, v in batch_metrics(cm[None]).items()}


def batch_metrics(cms: FloatArray) -> dict[str, FloatArray]:
    """``matrix_metrics`` of a stack of ``(B, K, K)`` matrices, one value per matrix."""
    diag = np.diagonal(cms, axis1=1, axis2=2)
    pred_tot, true_tot = cms.sum(axis=1), cms.sum(axis=2)
    prec, rec = _ratio(diag, pred_tot), _ratio(diag, true_tot)
    f1 = _ratio(2 * diag, pred_tot + true_tot)
    pick = slice(1, 2) if cms.shape[1] == 2 else slice(None)
    return {
        "accuracy": diag.sum(axis=1) / cms.sum(axis=(1, 2)),
        "f1": f1[:, pick].mean(axis=1),
        "precision": prec[:, pick].mean(axis=1),
        "recall": rec[:, pick].mean(axis=1),
    }


def expected_auc(score: FloatArray, weight: FloatArray) -> float:
    """ROC AUC when each row is positive with probability ``weight``, ranked by ``score``.

    Expected true and false positives are cumulative sums of ``weight`` and ``1 - weight`` down the ranking
    (NannyML's estimate); tied scores form one step, as in scikit-learn's ROC curve. With 0/1 weights this
    is the realized ROC AUC.

    Examples
    --------
    >>> expected_auc(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1.0, 0.0, 1.0, 0.0]))
    0.75
    """
    order = np.argsort(-score, kind="stable")
    s, w = score[order], weight[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    tps = np.r_[0.0, np.cumsum(w)[last]]
    fps = np.r_[0.0, np.cumsum(1.0 - w)[last]]
    if tps[-1] <= 0 or fps[-1] <= 0:
        return float("nan")
    return float(np.trapezoid(tps / tps[-1], fps / fps[-1]))


def _groups(k: int) -> range:
    return range(1, 2) if k == 2 else range(k)


def macro_auc(score: FloatArray, weight: FloatArray) -> float:
    """``expected_auc`` of the positive column (binary) or the one-vs-rest macro mean (multiclass)."""
    return float(np.mean([expected_auc(score[:, c], weight[:, c]) for c in _groups(score.shape[1])]))


def _std(values: FloatArray) -> float:
    return float(values.std()) if values.size else 0.0


def _delong_terms(score: FloatArray, positive: np.ndarray) -> tuple[tuple[float, float], ...]:
    pos, neg = np.sort(score[positive]), np.sort(score[~positive])
    if pos.size == 0 or neg.size == 0:
        return ()
    # placement of each positive among negatives and of each negative among positives (ties count half)
    v10 = (np.searchsorted(neg, pos, "left") + np.searchsorted(neg, pos, "right")) / (2.0 * neg.size)
    v01 = 1.0 - (np.searchsorted(pos, neg, "left") + np.searchsorted(pos, neg, "right")) / (2.0 * pos.size)
    share = pos.size / score.size
    return ((_std(v10), share), (_std(v01), 1.0 - share))


def sampling_terms(truth: IntArray, pred: IntArray, score: FloatArray) -> dict[str, SamplingTerms]:
    """Reference standard deviations behind each metric's sampling error (see the module docstring).

    Examples
    --------
    >>> truth, pred = np.array([0, 1, 1, 0, 1, 0]), np.array([0, 1, 0, 0, 1, 1])
    >>> score = one_hot(pred, 2) * 0.6 + 0.2
    >>> terms = sampling_terms(truth, pred, score)
    >>> round(terms["accuracy"][0][0][0], 3), round(sampling_error(terms["accuracy"], 100), 4)
    (0.471, 0.0471)
    """
    n, k = score.shape
    correct = (truth == pred).astype(np.float64)
    out: dict[str, list[tuple[tuple[float, float], ...]]] = {m: [] for m in METRICS}
    out["accuracy"].append(((_std(correct), 1.0),))
    for c in _groups(k):
        is_pred, is_true = pred == c, truth == c
        out["precision"].append(((_std(correct[is_pred]), is_pred.mean()),))
        out["recall"].append(((_std(correct[is_true]), is_true.mean()),))
        # NannyML's per-row F1: TP rows 1, FP and FN rows 0, rescaled so their mean is the F1
        rel = is_pred | is_true
        tp = int((is_pred & is_true).sum())
        if tp:
            scale = rel.sum() / (0.5 * (rel.sum() - tp) + tp)
            out["f1"].append(((_std((is_pred & is_true)[rel] * scale), rel.mean()),))
        out["roc_auc"].append(_delong_terms(score[:, c], is_true))
    return {m: tuple(g for g in groups if g) for m, groups in out.items()}


def sampling_error(terms: SamplingTerms, n: int) -> float:
    """Standard error of a metric over ``n`` rows from its reference ``terms``.

    Examples
    --------
    >>> round(sampling_error((((0.3, 1.0),),), 900), 3)
    0.01
    """
    if not terms or n <= 0:
        return float("nan")
    var = [sum(std**2 / (n * frac) for std, frac in group if frac > 0) for group in terms]
    return float(np.sqrt(sum(var)) / len(var))


def _weighted_auc(score: FloatArray, weight: FloatArray, boot: FloatArray) -> FloatArray:
    # expected_auc of every bootstrap replicate (rows of ``boot``, Poisson row weights) at once
    order = np.argsort(-score, kind="stable")
    s, w, b = score[order], weight[order], boot[:, order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    zero = np.zeros((b.shape[0], 1))
    tps = np.hstack([zero, np.cumsum(b * w, axis=1)[:, last]])
    fps = np.hstack([zero, np.cumsum(b * (1.0 - w), axis=1)[:, last]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.trapezoid(tps / tps[:, -1:], fps / fps[:, -1:], axis=1), dtype=np.float64)


def estimate_errors(
    cal: FloatArray, pred: IntArray, score: FloatArray, *, n_boot: int = 100
) -> dict[str, float]:
    """Standard error of each estimated metric itself, by a seeded Poisson bootstrap over the window's rows.

    This is the uncertainty of the expected metric given the window's inputs, without the label noise that
    the band (``sampling_error``) adds for the realized value, so it is narrower; the breach rule uses it.

    Examples
    --------
    >>> p = np.random.default_rng(0).uniform(size=1000)
    >>> cal, pred = np.column_stack([1 - p, p]), (p > 0.5).astype(np.int64)
    >>> correct = np.where(pred == 1, p, 1 - p)
    >>> round(estimate_errors(cal, pred, cal)["accuracy"], 4), round(float(correct.std()) / 1000**0.5, 4)
    (0.0044, 0.0045)
    """
    n, k = cal.shape
    boot = np.random.default_rng(0).poisson(1.0, size=(n_boot, n)).astype(np.float64)
    contrib = (cal[:, :, None] * one_hot(pred, k)[:, None, :]).reshape(n, k * k)
    per_metric = batch_metrics((boot @ contrib).reshape(n_boot, k, k))
    per_metric["roc_auc"] = np.mean([_weighted_auc(score[:, c], cal[:, c], boot) for c in _groups(k)], axis=0)
    return {m: float(np.nanstd(v)) for m, v in per_metric.items()}
