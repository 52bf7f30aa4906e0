"""`make bench-loop`: the same drifting stream replayed through a real `driftloop serve` under three
policies (never retrain, retrain every window, driftloop's own loop); accuracy over time and retrains.

Each policy gets a fresh scratch dir: `driftloop db upgrade`, `driftloop bootstrap` (the demo champion,
version 1, trained on undrifted data) and `driftloop serve` with the embedded scheduler on SQLite and a
local MLflow store. Per window the replay predicts the window's rows over HTTP, then delivers the labels
of the previous window (labels arrive one window late), then waits until the scheduler is idle (the checks
of the complete windows stored, no retrain job queued or running, the server answering with the champion).
Accuracy of a window = the served predictions against the true labels. Exit 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench._loop_report import job_lines, summarize, summary_lines, window_table, write_section
from bench._loop_run import POLICIES, PolicyRun, run_policy
from bench._loop_service import loop_settings
from bench._loop_stream import Scenario

RESULTS = Path(__file__).with_name("RESULTS.md")
NOTES = """How it is measured: per policy a fresh `driftloop db upgrade` + `driftloop bootstrap` (version 1,
the demo logistic regression on 4000 undrifted rows) + `driftloop serve` (embedded scheduler, SQLite, local
MLflow store in a scratch dir). Per window the replay POSTs the window's rows to `/v1/predict`, then the
previous window's labels to `/v1/feedback`, then (retrain every window only) `POST /v1/retrain` with
`force=true` and waits for the job; then it waits until the scheduler is idle: the scheduled drift and
performance checks of the complete windows stored, no retrain job queued or running, `/readyz` reporting
the champion, for 1.5 s. A window's accuracy is the served predictions against the true labels. Retrains =
jobs that trained a challenger (promoted or rejected by the gate). Time to serve = `episodes.opened_at` to
the first `predictions.created_at` of the version the episode's job promoted; it includes the replay's wait
for the scheduler to settle (traffic is paused meanwhile), so it is an upper bound for steady traffic.
Recovered = (driftloop - never) / (baseline - never), accuracies from the first drift on, baseline = never
retrain before the first drift. Labels of window i arrive after window i+1 was served, so every policy
serves two windows of a new concept with the old model at best."""


def _window(value: str) -> int | None:
    return None if value.lower() in ("", "none", "never") else int(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = Scenario()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--windows", type=int, default=d.windows)
    parser.add_argument("--window-rows", type=int, default=d.window_rows)
    parser.add_argument("--concept-at", type=int, default=d.concept_at, help="window where the concept flips")
    parser.add_argument(
        "--concept-until", type=_window, default=d.concept_until, help="window where it reverts"
    )
    parser.add_argument(
        "--covariate-at", type=_window, default=d.covariate_at, help="window of a covariate shift"
    )
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated subset")
    parser.add_argument("--results", type=Path, default=RESULTS, help="results file to update")
    parser.add_argument("--no-write", action="store_true", help="do not update the results file")
    parser.add_argument(
        "--concept", default="", help="concept-drift streams with the user's own model instead: "
        "comma-separated of severe, mild, regression, null (bench/_loop_concept.py)",
    )  # fmt: skip
    parser.add_argument("--concept-windows", type=int, default=30, help="windows per concept stream")
    parser.add_argument("--concept-timeout", type=float, default=1500.0, help="seconds per concept stream")
    return parser.parse_args(argv)


def concept_main(args: argparse.Namespace) -> int:
    """The concept streams through the real service, one fresh service each; exit 1 if a target is missed."""
    from bench._loop_concept import live_figures, report, run_live
    from bench.concept_streams import ConceptStream

    started, results = time.monotonic(), []
    with tempfile.TemporaryDirectory(prefix="driftloop-bench-concept-") as tmp:
        for name in [s for s in args.concept.split(",") if s]:
            w = args.concept_windows  # drifts at a third and two thirds (30 windows: 10 and 20)
            stream = ConceptStream(name, windows=w, window_rows=1000, drifts=(w // 3, 2 * w // 3))
            print(f"stream {stream.describe()}", flush=True)
            live = run_live(stream, Path(tmp) / name, progress=_print, timeout=args.concept_timeout)
            results.append((stream, live, live_figures(stream, live)))
    text = report(results, time.monotonic() - started, datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    print("\n" + text)
    if not args.no_write:
        write_section(args.results, text)
        print(f"\nwritten to {args.results}")
    return 0 if all(all(f.targets().values()) for _, _, f in results) else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.concept:
        return concept_main(args)
    scenario = Scenario(
        windows=args.windows, window_rows=args.window_rows, concept_at=args.concept_at,
        concept_until=args.concept_until, covariate_at=args.covariate_at, seed=args.seed,
    )  # fmt: skip
    policies = [p for p in args.policies.split(",") if p]
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        raise SystemExit(f"unknown policies {unknown}; choose from {', '.join(POLICIES)}")
    settings = loop_settings(scenario.window_rows)
    frame = scenario.frame()
    shown = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("--results=")]
    command = " ".join(["python -m bench.loop", *shown]) if shown else "make bench-loop"
    print(f"stream: {scenario.describe()}")
    print("settings: " + " ".join(f"{k}={v}" for k, v in settings.items()))
    started = time.monotonic()
    runs: dict[str, PolicyRun] = {}
    with tempfile.TemporaryDirectory(prefix="driftloop-bench-loop-") as tmp:
        for policy in policies:
            print(f"policy {policy}:", flush=True)
            runs[policy] = run_policy(policy, scenario, frame, Path(tmp), settings, progress=_print)
    total = time.monotonic() - started
    if set(runs) != set(POLICIES):
        for name, run in runs.items():
            print(f"{name}: accuracy {sum(run.accuracy) / len(run.accuracy):.3f}, retrains {run.retrains}")
        return 0
    summary = summarize(runs, scenario)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    heading = "## Retrain loop (`make bench-loop` = `.venv/bin/python -m bench.loop`)"
    if command != "make bench-loop":
        heading = f"## Retrain loop, other stream (`{command.replace(' --no-write', '')}`)"
    body = [
        heading,
        "",
        f"### {when}, `{command}`, {total:.0f} s in all",
        "",
        f"Stream: `retrain.synthetic.generate`, {scenario.describe()}; the same rows for every policy.",
        "Labels of a window arrive after the next window has been served. Settings (all three policies): "
        + ", ".join(f"`{k}={v}`" for k, v in settings.items())
        + "; `DRIFTLOOP_RETRAIN_ON_EPISODE=true` for driftloop only, the rest at their defaults (gate margin "
        "0, holdout 0.3, performance tolerance 0.05).",
        "",
        *summary_lines(runs, summary),
        "",
        *window_table(runs, scenario),
        "",
        "Jobs and episodes:",
        "",
        *job_lines(runs),
        "",
        NOTES,
    ]
    text = "\n".join(body)
    print()
    print(text)
    if not args.no_write:
        write_section(args.results, text)
        print(f"\nwritten to {args.results}")
    return 0 if all(summary.targets().values()) else 1


def _print(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
