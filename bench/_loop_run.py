"""Replay one stream through a fresh `driftloop serve` under one retraining policy."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench._loop_service import (
    TERMINAL,
    Api,
    LoopServer,
    Observer,
    Swap,
    episodes,
    jobs,
    policy_settings,
    settle,
    swaps,
    wait_job,
)
from bench._loop_stream import Scenario, window_rows

POLICIES = ("never", "every", "driftloop")
LABELS = {"never": "never retrain", "every": "retrain every window", "driftloop": "driftloop loop"}


@dataclass
class PolicyRun:
    policy: str
    accuracy: list[float] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)  # versions that answered each window ("1" or "1,2")
    jobs: list[dict[str, Any]] = field(default_factory=list)
    swaps: list[Swap] = field(default_factory=list)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def retrains(self) -> int:
        """Jobs that trained a challenger (promoted or rejected by the gate)."""
        return sum(j["status"] in ("succeeded", "rejected") for j in self.jobs)

    @property
    def promotions(self) -> int:
        return sum(j["status"] == "succeeded" for j in self.jobs)

    @property
    def failed(self) -> int:
        return sum(j["status"] == "failed" for j in self.jobs)


def run_policy(
    policy: str,
    scenario: Scenario,
    frame: pd.DataFrame,
    root: Path,
    settings: dict[str, str],
    progress: Callable[[str], None] = print,
) -> PolicyRun:
    """Per window: predict it, deliver the previous window's labels (one window late), let the policy act
    (`every`: a forced manual retrain, waited for), then wait until the scheduler is idle."""
    started = time.monotonic()
    server = LoopServer.prepare(root / policy, {**settings, **policy_settings(policy)})
    result = PolicyRun(policy)
    try:
        server.start()
        assert server.engine is not None
        api, observer = Api(server.url), Observer(server.engine, scenario.window_rows)
        try:
            settle(api, observer)
            pending: tuple[list[str], list[int]] | None = None
            for index in range(scenario.windows):
                records, truth = window_rows(frame, scenario, index)
                answers = api.predict(records)
                hits = sum(int(a["prediction"]) == y for a, y in zip(answers, truth, strict=True))
                result.accuracy.append(hits / len(truth))
                result.versions.append(",".join(sorted({a["model_version"] for a in answers}, key=int)))
                if pending is not None:
                    api.feedback(*pending)
                    if policy == "every":
                        job = api.retrain(f"bench: window {index - 1} labeled", force=True)
                        if job["status"] not in TERMINAL:
                            wait_job(api, int(job["id"]))
                pending = ([a["prediction_id"] for a in answers], truth)
                settle(api, observer)
                progress(
                    f"  {policy:9s} window {index:2d} {scenario.phase(index):9s} "
                    f"accuracy {result.accuracy[-1]:.3f} served by v{result.versions[-1]}"
                )
        finally:
            api.close()
        result.jobs, result.swaps = jobs(server.engine), swaps(server.engine)
        result.episodes = episodes(server.engine)
    except Exception:
        progress(f"server log tail ({policy}):\n{server.log_tail()}")
        raise
    finally:
        server.stop()
    result.seconds = time.monotonic() - started
    return result
