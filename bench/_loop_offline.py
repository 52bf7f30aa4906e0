"""The loop bench's policies replayed offline (pure Python, no service): never retrain, retrain every
window, an oracle, and the driftloop policy built from the library's own pieces (evidence test, K of M
episodes with the decisive fast path, post-change training data, the paired gate).

The timeline is the live bench's: window ``i`` is served by the current champion, then the labels of window
``i - 1`` arrive and the policy acts; a model it produces serves from window ``i + 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import accuracy_score, mean_squared_error

from bench.concept_streams import FEATURES, SEQ, TARGET, ConceptStream
from detectors.baseline_pool import pool_baselines
from detectors.performance_evidence import Baseline, baseline_from_rows, window_evidence
from retrain.evaluate import evaluate
from retrain.post_change import post_change_split
from retrain.train import train_challenger

POLICIES = ("never", "every", "oracle", "driftloop")


@dataclass(frozen=True)
class LoopDefaults:
    """The service's defaults the driftloop policy runs with (cooldown 0: the bench compresses time)."""

    breach_k: int = 2
    breach_m: int = 3
    retrain_window_rows: int = 5000
    holdout_fraction: float = 0.3
    min_rows: int = 200
    daily_budget: int = 6
    alpha_breach: float = 0.01
    alpha_gate: float = 0.05
    pool_clean_windows: bool = True


@dataclass
class OfflineRun:
    policy: str
    scores: list[float] = field(default_factory=list)  # accuracy or rmse of each served window
    models: list[int] = field(default_factory=list)  # which model (0 = the user's) served each window
    trained_after: dict[int, int] = field(default_factory=dict)  # model -> last labeled window it saw
    retrains: int = 0
    promotions: int = 0
    log: list[str] = field(default_factory=list)

    def windows_to_serve(self, drift: int) -> int | None:
        """Windows from ``drift`` until a model trained on labels from ``drift`` on serves."""
        for w in range(drift, len(self.models)):
            if self.trained_after.get(self.models[w], -1) >= drift:
                return w - drift
        return None


@dataclass
class _State:
    """What the driftloop policy keeps between windows (the service keeps it in its database)."""

    baseline: Baseline
    checks: list[tuple[int, bool]] = field(default_factory=list)  # (window, breached) of this champion
    episode_change: int | None = None  # first breaching window of the open episode
    retry: bool = False
    pending: list[tuple[int, Baseline]] = field(default_factory=list)  # checked windows not yet pooled


def run_offline(stream: ConceptStream, policy: str, defaults: LoopDefaults | None = None) -> OfflineRun:
    """Replay ``stream`` under ``policy`` (one of :data:`POLICIES`) and return what each window got."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid: {', '.join(POLICIES)}")
    d = defaults or LoopDefaults()
    frame = stream.frame()
    champion, _, holdout = stream.fit_user_model()
    state = _State(_baseline(stream, champion, holdout))
    run = OfflineRun(policy, trained_after={0: -1})
    served: list[np.ndarray] = []
    model_id = 0
    for i in range(stream.windows):
        rows = stream.window(frame, i)
        served.append(np.asarray(champion.predict(rows[list(FEATURES)])))
        run.scores.append(_metric(stream, rows[TARGET].to_numpy(), served[-1]))
        run.models.append(model_id)
        if i == 0:
            continue
        labeled = i - 1  # its labels arrive now, one window late
        new = _act(policy, stream, frame, labeled, champion, run, state, served, model_id, d)
        if new is not None:
            champion = new
            model_id += 1
            run.trained_after[model_id] = labeled
    return run


def _act(
    policy: str, s: ConceptStream, frame: pd.DataFrame, j: int, champion: Any, run: OfflineRun,
    state: _State, served: list[np.ndarray], model_id: int, d: LoopDefaults,
) -> Any:  # fmt: skip
    """The model to serve from the next window on, or None to keep the champion."""
    if policy == "never":
        return None
    if policy == "every":  # refit on the newest labeled window
        run.retrains += 1
        run.promotions += 1
        return _fit(s, champion, s.window(frame, j))
    if policy == "oracle":  # knows the drifts: refits on the first two labeled windows of each
        if any(j == drift + 1 for drift in s.drifts):
            run.retrains += 1
            run.promotions += 1
            return _fit(s, champion, frame.iloc[(j - 1) * s.window_rows : (j + 1) * s.window_rows])
        return None
    return _driftloop(s, frame, j, champion, run, state, served, model_id, d)


def _driftloop(
    s: ConceptStream, frame: pd.DataFrame, j: int, champion: Any, run: OfflineRun, state: _State,
    served: list[np.ndarray], model_id: int, d: LoopDefaults,
) -> Any:  # fmt: skip
    rows = s.window(frame, j)
    if run.models[j] == model_id:  # checks are per version: a window served by the old champion is not its
        ev = window_evidence(
            s.metric, rows[TARGET].to_numpy(), served[j], state.baseline, alpha=d.alpha_breach
        )
        state.checks.append((j, ev.is_breach))
        recent = state.checks[-d.breach_m :]
        opens = ev.is_decisive or sum(b for _, b in recent) >= d.breach_k
        if state.episode_change is None and opens:
            state.episode_change = j if ev.is_decisive else min(w for w, b in recent if b)
            state.retry = True
            run.log.append(f"window {j}: episode opens ({ev.summary})")
        elif state.episode_change is not None and not ev.is_breach and sum(b for _, b in recent) < d.breach_k:
            run.log.append(f"window {j}: episode closes")
            state.episode_change, state.retry = None, False
        _pool(s, rows, served[j], j, state, d)
    if state.episode_change is None or not state.retry or run.retrains >= d.daily_budget:
        return None
    labeled = frame.iloc[max(0, (j + 1) * s.window_rows - d.retrain_window_rows) : (j + 1) * s.window_rows]
    change_at = state.episode_change * s.window_rows
    data = post_change_split(
        labeled,
        time_column=SEQ,
        change_at=change_at,
        holdout_fraction=d.holdout_fraction,
        min_rows=d.min_rows,
    )
    challenger = train_challenger(champion, data.train[list(FEATURES)], data.train[TARGET])
    gate = evaluate(champion, challenger, data.holdout, features=FEATURES, target=TARGET, metric=s.metric,
                    alpha=d.alpha_gate)  # fmt: skip
    run.retrains += 1
    assert gate.paired is not None
    run.log.append(f"window {j}: retrain on {data.reason}: {gate.paired.summary}")
    if not gate.passed:
        return None  # retried when the next window's labels add post-change rows
    run.promotions += 1
    state.baseline = _baseline(s, challenger, data.holdout)
    state.checks, state.episode_change, state.retry, state.pending = [], None, False, []
    return challenger


def _pool(
    s: ConceptStream, rows: pd.DataFrame, served: np.ndarray, j: int, state: _State, d: LoopDefaults
) -> None:
    """Pool windows older than M checks into the baseline while no episode is open (see baseline_pool)."""
    if not d.pool_clean_windows:
        return
    if state.episode_change is not None:
        state.pending.clear()  # windows around a change are never pooled
        return
    state.pending.append((j, baseline_from_rows(s.metric, rows[TARGET].to_numpy(), served)))
    while state.pending and state.pending[0][0] <= j - d.breach_m:
        state.baseline = pool_baselines(state.baseline, state.pending.pop(0)[1])


def _fit(s: ConceptStream, champion: Any, rows: pd.DataFrame) -> Any:
    return clone(champion).fit(rows[list(FEATURES)], rows[TARGET])


def _baseline(s: ConceptStream, model: Any, holdout: pd.DataFrame) -> Baseline:
    return baseline_from_rows(s.metric, holdout[TARGET].to_numpy(), model.predict(holdout[list(FEATURES)]))


def _metric(s: ConceptStream, truth: np.ndarray, pred: np.ndarray) -> float:
    if s.metric == "rmse":
        return float(np.sqrt(mean_squared_error(truth, pred)))
    return float(accuracy_score(truth, pred))


Runner = Callable[[ConceptStream, str], OfflineRun]
