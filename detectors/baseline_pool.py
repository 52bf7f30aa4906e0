"""Pooling a model's clean labeled windows into its performance baseline.

A holdout of a few hundred rows makes a noisy baseline, and the baseline's noise caps the power of every
later breach test (with 900 holdout rows a 4-point accuracy drop on a 1000-row window is barely 2.3 standard
errors). Windows the model served *before* any sign of change are more rows of the same distribution: pooling
them keeps the test calibrated on no-change data and makes it sharper. Pool a window only once it is older
than the breach rule's M checks with no episode open, so windows of a change that is still being judged
never dilute the baseline.
"""

from __future__ import annotations

import math

from detectors.performance_evidence import Baseline, baseline_from_rows

__all__ = ["baseline_from_rows", "pool_baselines"]


def pool_baselines(baseline: Baseline, window: Baseline) -> Baseline:
    """The baseline of the rows of both: counts added, proportions and loss moments combined exactly.

    ``window`` is :func:`~detectors.performance_evidence.baseline_from_rows` of a labeled window.
    ROC AUC is not pooled (an AUC of a union is not a function of the parts): the baseline is returned as is.

    Examples
    --------
    >>> pool_baselines(Baseline("accuracy", 0.8, 500), Baseline("accuracy", 0.9, 1500))
    Baseline(metric='accuracy', value=0.875, n=2000, loss_mean=None, loss_sd=None, n_positive=None)
    >>> a = Baseline("mae", 1.0, 2, loss_mean=1.0, loss_sd=0.0)  # losses 1, 1
    >>> b = Baseline("mae", 2.0, 2, loss_mean=2.0, loss_sd=0.0)  # losses 2, 2
    >>> p = pool_baselines(a, b)
    >>> p.value, p.n, round(p.loss_sd, 4)  # losses 1, 1, 2, 2
    (1.5, 4, 0.5774)
    """
    if baseline.metric != window.metric:
        raise ValueError(f"cannot pool a {window.metric!r} window into a {baseline.metric!r} baseline")
    if baseline.metric == "roc_auc" or window.n <= 0:
        return baseline
    n = baseline.n + window.n
    if baseline.metric == "accuracy":
        return Baseline("accuracy", (baseline.value * baseline.n + window.value * window.n) / n, n)
    parts = [(b.loss_mean, b.loss_sd, b.n) for b in (baseline, window)]
    if any(mean is None or sd is None for mean, sd, _ in parts):
        raise ValueError(f"pooling {baseline.metric} needs loss_mean and loss_sd on both baselines")
    mean = sum(float(m) * k for m, _, k in parts if m is not None) / n
    # within-part sums of squares plus the between-part spread, over n - 1
    squares = sum(
        (k - 1) * float(s) ** 2 + k * (float(m) - mean) ** 2
        for m, s, k in parts
        if m is not None and s is not None
    )
    sd = math.sqrt(squares / (n - 1)) if n > 1 else 0.0
    value = math.sqrt(mean) if baseline.metric == "rmse" else mean
    return Baseline(baseline.metric, value, n, loss_mean=mean, loss_sd=sd)
