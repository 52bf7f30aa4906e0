"""The gate's paired test: champion and challenger scored on the same holdout rows.

- accuracy: McNemar's exact test, :func:`scipy.stats.binomtest` on the discordant pairs (rows exactly one
  of the two models gets right), one-sided for the challenger;
- every other metric: a seeded paired bootstrap of the metric difference (the same resampled rows for
  both models); the p-value is the share of resamples where the challenger is not better.

The challenger wins when the test rejects "not better" at ``alpha`` *and* the observed improvement is at
least the margin; a tie or a win of a row or two never promotes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_ALPHA = 0.05
DEFAULT_RESAMPLES = 2000
_CHUNK = 200  # resamples drawn at once: bounds memory at _CHUNK x n indexes

#: ``metric(rows) -> value`` for one model, ``rows`` an index array into the holdout
MetricOf = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class PairedComparison:
    """Outcome of the paired test. ``improvement`` is positive when the challenger is better whichever way
    the metric points; ``discordant`` = (rows only the challenger gets right, rows only the champion does),
    McNemar only."""

    metric: str
    test: str
    champion_score: float
    challenger_score: float
    improvement: float
    p_val: float
    alpha: float
    margin: float
    n: int
    n_resamples: int
    discordant: tuple[int, int] | None
    passed: bool
    summary: str


def mcnemar(
    champion_correct: np.ndarray,
    challenger_correct: np.ndarray,
    *,
    alpha: float = DEFAULT_ALPHA,
    margin: float = 0.0,
) -> PairedComparison:
    """McNemar's exact one-sided test on per-row correctness (accuracy).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> champ = rng.random(500) < 0.75
    >>> chall = champ | (rng.random(500) < 0.2)  # right wherever the champion is, and more
    >>> r = mcnemar(champ, chall)
    >>> r.passed, r.discordant, r.p_val < 1e-6
    (True, (29, 0), True)
    """
    champ, chall = np.asarray(champion_correct, dtype=bool), np.asarray(challenger_correct, dtype=bool)
    _check(alpha, margin, champ.size, chall.size)
    wins, losses = int(np.sum(chall & ~champ)), int(np.sum(champ & ~chall))
    p = (
        1.0
        if wins + losses == 0
        else float(stats.binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue)
    )
    a, b = float(champ.mean()), float(chall.mean())
    return _result("accuracy", "mcnemar_exact", a, b, b - a, p, alpha, margin, champ.size, 0, (wins, losses))


def paired_bootstrap(
    metric: str,
    champion_metric: MetricOf,
    challenger_metric: MetricOf,
    n: int,
    *,
    higher_is_better: bool,
    alpha: float = DEFAULT_ALPHA,
    margin: float = 0.0,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Seeded paired bootstrap of the difference ``challenger - champion`` over ``n`` holdout rows.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> err_a, err_b = rng.normal(size=400) * 1.0, rng.normal(size=400) * 0.7
    >>> rmse = lambda e: lambda rows: float(np.sqrt(np.mean(e[rows] ** 2)))
    >>> r = paired_bootstrap("rmse", rmse(err_a), rmse(err_b), 400, higher_is_better=False)
    >>> r.test, r.passed, round(r.improvement, 3)
    ('paired_bootstrap', True, 0.177)
    """
    _check(alpha, margin, n, n)
    if n_resamples < 100:
        raise ValueError(f"n_resamples must be >= 100, got {n_resamples}")
    every = np.arange(n)
    sign = 1.0 if higher_is_better else -1.0
    a, b = champion_metric(every), challenger_metric(every)
    rng = np.random.default_rng(seed)
    not_better = 0
    for start in range(0, n_resamples, _CHUNK):
        for rows in rng.integers(0, n, size=(min(_CHUNK, n_resamples - start), n)):
            gain = sign * (challenger_metric(rows) - champion_metric(rows))
            not_better += not gain > 0  # NaN (a metric undefined on a resample) counts against
    p = (not_better + 1) / (n_resamples + 1)
    return _result(metric, "paired_bootstrap", a, b, sign * (b - a), p, alpha, margin, n, n_resamples, None)


def _check(alpha: float, margin: float, n_champion: int, n_challenger: int) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if n_champion != n_challenger or n_champion == 0:
        raise ValueError(
            f"need the same, non-empty holdout rows for both models ({n_champion}, {n_challenger})"
        )


def _result(
    metric: str, test: str, champion: float, challenger: float, gain: float, p: float,
    alpha: float, margin: float, n: int, resamples: int, discordant: tuple[int, int] | None,
) -> PairedComparison:  # fmt: skip
    # the epsilon keeps "beats by exactly the margin" from failing on float rounding (0.03 - 0.02 < 0.01)
    big_enough = math.isfinite(gain) and gain > 0 and gain >= margin - 1e-12
    passed = bool(big_enough and p < alpha)
    if passed:
        verdict = f"a real win (p < {alpha:g}, improvement >= margin {margin:g})"
    elif not big_enough:
        verdict = f"no win: improvement {gain:+.4f} is not above zero and the margin {margin:g}"
    else:
        verdict = f"not significant at alpha {alpha:g}: the difference may be chance"
    head = f"{metric} {challenger:.4f} vs champion {champion:.4f} on {n} paired rows, {test} p={p:.3g}"
    return PairedComparison(
        metric, test, champion, challenger, float(gain), float(p), alpha, margin, int(n), resamples,
        discordant, passed, f"{head}: {verdict}",
    )  # fmt: skip
