"""The performance baseline a version's windows are tested against, carried from run to run.

It starts as the version's stored baseline (a promoted challenger's holdout) or, without one, the
version's first labeled window. Then, after each check with no episode open, windows older than M checks
are pooled into it (`detectors.baseline_pool`): more rows of the same concept make the breach test sharper
while staying calibrated. When an episode is open the windows not yet pooled are dropped, so rows of a
change never dilute the baseline. A new version starts again from its own baseline: the state is per
version and lives in the run's summary (`baseline_state` before the check, `baseline_next` after it).
"""

from __future__ import annotations

from typing import Any

from detectors.baseline_pool import pool_baselines
from detectors.performance_evidence import Baseline

State = dict[str, Any]  # {"baseline": Baseline dict | None, "pending": [[check, Baseline dict]], "checks": n}


def initial(baseline: Baseline | None) -> State:
    return {"baseline": baseline.to_dict() if baseline else None, "pending": [], "checks": 0}


def baseline_of(state: State) -> Baseline | None:
    found = state.get("baseline")
    return Baseline.from_dict(found) if found else None


def advance(state: State, window: Baseline, *, episode_open: bool, m: int) -> State:
    """The state after one check of ``window`` (a window without a baseline before it becomes it).

    Examples
    --------
    >>> s = initial(Baseline("accuracy", 0.8, 1000))
    >>> for _ in range(4):
    ...     s = advance(s, Baseline("accuracy", 0.8, 1000), episode_open=False, m=3)
    >>> baseline_of(s).n, len(s["pending"])  # the first window is pooled at the 4th check
    (2000, 3)
    >>> baseline_of(advance(s, Baseline("accuracy", 0.5, 1000), episode_open=True, m=3)).n
    2000
    """
    checks = int(state.get("checks", 0)) + 1
    base = baseline_of(state)
    pending = [list(p) for p in state.get("pending", [])]
    if base is None or base.metric != window.metric:
        return {"baseline": window.to_dict(), "pending": [], "checks": checks}
    if episode_open:
        return {"baseline": base.to_dict(), "pending": [], "checks": checks}
    pending.append([checks, window.to_dict()])
    while pending and int(pending[0][0]) <= checks - m:
        base = pool_baselines(base, Baseline.from_dict(pending.pop(0)[1]))
    return {"baseline": base.to_dict(), "pending": pending, "checks": checks}
