"""Performance breach by evidence: a one-sided test of a labeled window's metric against the baseline.

A window breaches when the test rejects "no worse than the baseline" at ``alpha`` *and* the observed loss is
at least ``min_effect`` (absolute for accuracy / ROC AUC, relative for rmse / mae / log loss), so huge windows
do not alarm on trivia. A breach is *decisive* (one window settles it) when ``p < 1e-6`` and the effect is at
least three times the minimum.

Tests and the baseline data each needs (:class:`Baseline`):

- accuracy: the baseline accuracy and its row count ``n``; Fisher's exact one-sided test on the two
  2x2 counts (``n=0``: the baseline is taken as exact and :func:`scipy.stats.binomtest` is used);
- rmse / mae / log loss: mean, standard deviation and count of the baseline's *per-row* losses (squared
  error, absolute error, log loss of the true class; :func:`baseline_from_rows` computes them from the
  holdout); Welch's one-sided t test on the per-row losses;
- roc_auc: the baseline AUC with its positive and negative counts; DeLong's variance for the window,
  Hanley-McNeil's for the baseline, a one-sided z test.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from detectors.performance_losses import auc_delong, per_row_losses

ABSOLUTE_METRICS = ("accuracy", "roc_auc")
RELATIVE_METRICS = ("rmse", "mae", "log_loss")
EVIDENCE_METRICS = ABSOLUTE_METRICS + RELATIVE_METRICS
DEFAULT_ALPHA = 0.01
DECISIVE_P = 1e-6
DECISIVE_FACTOR = 3.0


def default_min_effect(metric: str) -> float:
    """0.02 absolute for accuracy / ROC AUC, 0.10 relative (10%) for rmse / mae / log loss.

    Examples
    --------
    >>> default_min_effect("accuracy"), default_min_effect("rmse")
    (0.02, 0.1)
    """
    _check_metric(metric)
    return 0.02 if metric in ABSOLUTE_METRICS else 0.10


@dataclass(frozen=True)
class Baseline:
    """The model's held-out performance: ``value`` of ``metric`` over ``n`` rows.

    ``loss_mean`` / ``loss_sd`` (per-row losses; needed for rmse, mae, log loss) and ``n_positive``
    (needed for roc_auc) come from :func:`baseline_from_rows`.
    """

    metric: str
    value: float
    n: int
    loss_mean: float | None = None
    loss_sd: float | None = None
    n_positive: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (round-trips through :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class BreachEvidence:
    """One window against the baseline. ``effect`` is signed so that positive means worse (absolute points
    for accuracy / ROC AUC, a fraction of the baseline for errors)."""

    metric: str
    test: str
    value: float
    baseline: float
    n: int
    p_val: float
    effect: float
    min_effect: float
    alpha: float
    is_breach: bool
    is_decisive: bool
    summary: str

    @property
    def is_drift(self) -> bool:
        """Same as ``is_breach`` (the detectors' field name)."""
        return self.is_breach

    @property
    def status(self) -> str:
        return "drift" if self.is_breach else "no_drift"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, ``status`` included."""
        return {**asdict(self), "status": self.status}


def baseline_from_rows(
    metric: str,
    y_true: Any,
    y_pred: Any,
    *,
    proba: Any = None,
    labels: Any = None,
) -> Baseline:
    """The baseline of ``metric`` from a holdout's truth, predictions and (log loss, AUC) probabilities.

    ``proba`` is the positive-class probability (1-D) or one column per label in ``labels`` order.

    Examples
    --------
    >>> b = baseline_from_rows("rmse", [1.0, 2.0, 3.0, 4.0], [1.0, 2.5, 2.5, 5.0])
    >>> round(b.value, 3), b.n, round(b.loss_mean, 3)
    (0.612, 4, 0.375)
    >>> baseline_from_rows("accuracy", [0, 1, 1, 0], [0, 1, 0, 0])
    Baseline(metric='accuracy', value=0.75, n=4, loss_mean=None, loss_sd=None, n_positive=None)
    """
    _check_metric(metric)
    truth = np.asarray(y_true)
    if metric == "accuracy":
        return Baseline(metric, float(np.mean(truth == np.asarray(y_pred))), int(truth.size))
    if metric == "roc_auc":
        positive = _positive(truth, labels)
        auc, _ = auc_delong(positive, _score(proba))
        return Baseline(metric, auc, int(truth.size), n_positive=int(positive.sum()))
    losses = per_row_losses(metric, truth, y_pred, proba=proba, labels=labels)
    mean = float(losses.mean())
    value = math.sqrt(mean) if metric == "rmse" else mean
    sd = float(losses.std(ddof=1)) if losses.size > 1 else 0.0
    return Baseline(metric, value, int(losses.size), loss_mean=mean, loss_sd=sd)


def window_evidence(
    metric: str,
    y_true: Any,
    y_pred: Any,
    baseline: Baseline,
    *,
    proba: Any = None,
    labels: Any = None,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float | None = None,
) -> BreachEvidence:
    """Test whether a labeled window is worse than ``baseline`` on ``metric``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.integers(0, 2, 1000)
    >>> pred = np.where(rng.random(1000) < 0.72, truth, 1 - truth)  # about 72% right
    >>> ev = window_evidence("accuracy", truth, pred, Baseline("accuracy", 0.83, 5000))
    >>> ev.test, ev.is_breach, ev.is_decisive, round(ev.effect, 3)
    ('fisher_exact', True, True, 0.112)
    """
    _check_metric(metric)
    if metric != baseline.metric:
        raise ValueError(f"baseline is for {baseline.metric!r}, not {metric!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    floor = default_min_effect(metric) if min_effect is None else float(min_effect)
    if floor < 0:
        raise ValueError(f"min_effect must be >= 0, got {floor}")
    truth = np.asarray(y_true)
    if truth.size == 0:
        raise ValueError("the window has no labeled rows")
    if metric == "accuracy":
        hits = int(np.sum(truth == np.asarray(y_pred)))
        test, value, p = _accuracy_test(hits, int(truth.size), baseline)
        effect = baseline.value - value
    elif metric == "roc_auc":
        test, value, p = _auc_test(_positive(truth, labels), _score(proba), baseline)
        effect = baseline.value - value
    else:
        losses = per_row_losses(metric, truth, y_pred, proba=proba, labels=labels)
        test, value, p = _loss_test(metric, losses, baseline)
        effect = value / baseline.value - 1.0 if baseline.value > 0 else math.inf
    breach = bool(p < alpha and effect >= floor)
    decisive = bool(breach and p < DECISIVE_P and effect >= DECISIVE_FACTOR * floor)
    n = int(truth.size)
    words = _sentence(metric, test, value, baseline.value, n, p, effect, floor, alpha, breach, decisive)
    return BreachEvidence(
        metric, test, float(value), float(baseline.value), n, float(p), float(effect),
        floor, float(alpha), breach, decisive, words,
    )  # fmt: skip


def _accuracy_test(hits: int, n: int, baseline: Baseline) -> tuple[str, float, float]:
    value = hits / n
    if baseline.n <= 0:  # a baseline without a row count is taken as exact
        p = stats.binomtest(hits, n, min(max(baseline.value, 0.0), 1.0), alternative="less").pvalue
        return "binomial_exact", value, float(p)
    base_hits = round(baseline.value * baseline.n)
    table = np.array([[hits, n - hits], [base_hits, baseline.n - base_hits]], dtype=np.int64)
    # "less": the window's odds of a correct prediction are below the baseline's
    p = stats.fisher_exact(table, alternative="less").pvalue
    return "fisher_exact", value, float(p)


def _loss_test(metric: str, losses: np.ndarray, baseline: Baseline) -> tuple[str, float, float]:
    if baseline.loss_mean is None or baseline.loss_sd is None or baseline.n < 2:
        raise ValueError(
            f"a {metric} baseline needs the per-row loss mean, sd and n >= 2 (see baseline_from_rows)"
        )
    mean = float(losses.mean())
    value = math.sqrt(mean) if metric == "rmse" else mean
    if losses.size < 2:
        return "welch_t", value, 1.0
    sd = float(losses.std(ddof=1))
    if sd == 0.0 and baseline.loss_sd == 0.0:
        return "welch_t", value, 0.0 if mean > baseline.loss_mean else 1.0
    result = stats.ttest_ind_from_stats(
        mean, sd, losses.size, baseline.loss_mean, baseline.loss_sd, baseline.n,
        equal_var=False, alternative="greater",
    )  # fmt: skip
    return "welch_t", value, float(result.pvalue)


def _auc_test(positive: np.ndarray, score: np.ndarray, baseline: Baseline) -> tuple[str, float, float]:
    if baseline.n_positive is None:
        raise ValueError("a roc_auc baseline needs n_positive (see baseline_from_rows)")
    auc, var = auc_delong(positive, score)
    a, m, k = baseline.value, baseline.n_positive, baseline.n - baseline.n_positive
    if m < 1 or k < 1:
        raise ValueError("a roc_auc baseline needs both classes")
    # Hanley & McNeil (1982): the variance of an AUC from its value and the class counts alone
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    base_var = (a * (1 - a) + (m - 1) * (q1 - a * a) + (k - 1) * (q2 - a * a)) / (m * k)
    se = math.sqrt(max(var + base_var, 1e-18))
    return "delong_z", auc, float(stats.norm.sf((a - auc) / se))


def _positive(truth: np.ndarray, labels: Any) -> np.ndarray:
    classes = list(labels) if labels is not None else sorted(set(truth.tolist()))
    if len(classes) != 2:
        raise ValueError(f"roc_auc evidence needs a binary target, got classes {classes}")
    return np.asarray(truth == classes[1])


def _score(proba: Any) -> np.ndarray:
    if proba is None:
        raise ValueError("roc_auc needs probabilities (proba)")
    p = np.asarray(proba, dtype=np.float64)
    return p[:, -1] if p.ndim == 2 else p


def _check_metric(metric: str) -> None:
    if metric not in EVIDENCE_METRICS:
        raise ValueError(f"no evidence test for metric {metric!r}; valid: {', '.join(EVIDENCE_METRICS)}")


def _sentence(
    metric: str, test: str, value: float, base: float, n: int, p: float,
    effect: float, floor: float, alpha: float, breach: bool, decisive: bool,
) -> str:  # fmt: skip
    size = f"{effect * 100:+.1f} points" if metric in ABSOLUTE_METRICS else f"{effect:+.1%}"
    need = f"{floor * 100:.1f} points" if metric in ABSOLUTE_METRICS else f"{floor:.0%}"
    head = f"{metric} {value:.4f} on {n} rows vs baseline {base:.4f} (loss {size}; {test} p={p:.2g})"
    if decisive:
        return f"{head}: decisive breach, one window settles it."
    if breach:
        return f"{head}: breach (p < {alpha:g} and at least {need} worse)."
    if p < alpha:
        return f"{head}: significant but smaller than the minimum effect of {need}; no breach."
    return f"{head}: not significant at alpha {alpha:g}; no breach."
