"""Figures of `make bench-loop`: per-window accuracy, recovery, retrain counts, time to a new champion."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

from bench._loop_run import LABELS, POLICIES, PolicyRun
from bench._loop_stream import Scenario

SERVE_TARGET_SECONDS = 60.0


@dataclass(frozen=True)
class Summary:
    baseline: float  # never-retrain accuracy before the first drift
    after: dict[str, float]  # per policy: accuracy from the first drift on
    overall: dict[str, float]
    retrains: dict[str, int]
    recovered: float  # share of the accuracy lost to drift that driftloop wins back
    swap_seconds: list[float]

    @property
    def lost(self) -> float:
        return self.baseline - self.after["never"]

    def targets(self) -> dict[str, bool]:
        return {
            "recovered >= 90%": self.recovered >= 0.9,
            "retrains <= 1/5 of retrain-every-window": 5 * self.retrains["driftloop"]
            <= self.retrains["every"],
            "new champion serves within 60 s of the breach": bool(self.swap_seconds)
            and max(self.swap_seconds) <= SERVE_TARGET_SECONDS,
        }


def summarize(runs: dict[str, PolicyRun], scenario: Scenario) -> Summary:
    pre = slice(0, scenario.concept_at)
    post = slice(scenario.concept_at, scenario.windows)
    after = {p: mean(runs[p].accuracy[post]) for p in POLICIES}
    baseline = mean(runs["never"].accuracy[pre])
    lost = baseline - after["never"]
    recovered = (after["driftloop"] - after["never"]) / lost if lost > 0 else float("nan")
    return Summary(
        baseline=baseline,
        after=after,
        overall={p: mean(runs[p].accuracy) for p in POLICIES},
        retrains={p: runs[p].retrains for p in POLICIES},
        recovered=recovered,
        swap_seconds=[s.seconds for s in runs["driftloop"].swaps if s.seconds is not None],
    )


def window_table(runs: dict[str, PolicyRun], scenario: Scenario) -> list[str]:
    lines = [
        "| window | traffic | never retrain | retrain every window | driftloop (served by) |",
        "|---:|---|---:|---:|---|",
    ]
    for i in range(scenario.windows):
        never, every, loop = (runs[p] for p in POLICIES)
        lines.append(
            f"| {i} | {scenario.phase(i)} | {never.accuracy[i]:.3f} | {every.accuracy[i]:.3f} "
            f"| {loop.accuracy[i]:.3f} (v{loop.versions[i]}) |"
        )
    return lines


def summary_lines(runs: dict[str, PolicyRun], s: Summary) -> list[str]:
    lines = [
        "| policy | overall accuracy | accuracy from the first drift on | retrains (promoted) | wall time |",
        "|---|---:|---:|---:|---:|",
    ]
    for p in POLICIES:
        r = runs[p]
        failed = f", {r.failed} failed" if r.failed else ""
        lines.append(
            f"| {LABELS[p]} | {s.overall[p]:.3f} | {s.after[p]:.3f} | {r.retrains} ({r.promotions}{failed}) "
            f"| {r.seconds:.0f} s |"
        )
    every_recovered = (s.after["every"] - s.after["never"]) / s.lost if s.lost > 0 else float("nan")
    lines += [
        "",
        f"- baseline (never retrain, before the first drift): {s.baseline:.3f}; never retrain after: "
        f"{s.after['never']:.3f}; **accuracy lost to drift: {s.lost:.3f}**",
        f"- **recovered by driftloop: {s.recovered:.1%}** (retrain every window: {every_recovered:.1%})",
        f"- **retrains: driftloop {s.retrains['driftloop']} vs every window {s.retrains['every']}**",
    ]
    for swap in runs["driftloop"].swaps:
        to_job = (swap.job_created_at - swap.opened_at).total_seconds()
        job = (swap.job_finished_at - swap.job_created_at).total_seconds()
        total = f"{swap.seconds:.1f} s" if swap.seconds is not None else "never served"
        lines.append(
            f"- {swap.kind} episode {swap.episode_id} -> version {swap.version}: **first prediction by the "
            f"new version {total} after the episode opened** (job queued after {to_job:.1f} s, queued to "
            f"promoted {job:.1f} s)"
        )
    for name, met in s.targets().items():
        lines.append(f"- target {name}: {'MET' if met else 'NOT MET'}")
    return lines


def job_lines(runs: dict[str, PolicyRun]) -> list[str]:
    lines = []
    for p in ("driftloop", "every"):
        for j in runs[p].jobs if p == "driftloop" else runs[p].jobs[:3]:
            lines.append(
                f"- {LABELS[p]}: job {j['id']} {j['trigger']} -> {j['status']}"
                f"{' v' + str(j['result_version']) if j['result_version'] else ''}"
                f"{' (' + str(j['error'])[:120] + ')' if j['error'] else ''}"
            )
    loop = runs["driftloop"]
    for e in loop.episodes:
        lines.append(
            f"- driftloop: {e['kind']} episode {e['id']} ({e['status']}), opened {e['opened_at']}; "
            f"its last breaching check: {e['message']}"
        )
    return lines


def write_section(path: Path, body: str) -> None:
    """Replace the section of RESULTS.md headed by `body`'s first line (or append it); other sections
    stay as they are."""
    heading = body.splitlines()[0]
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(heading)}$.*?(?=^## |\Z)", re.S | re.M)
    section = body.rstrip() + "\n\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text.rstrip() + "\n")
