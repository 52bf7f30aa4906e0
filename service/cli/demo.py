"""`driftloop demo`: the whole loop on the embedded default (SQLite + local MLflow store), in the terminal.

It migrates and bootstraps a scratch data folder, starts `driftloop serve` (embedded scheduler, small windows,
short intervals), registers a local webhook receiver, replays generated traffic with covariate and concept
drift and feeds the labels back, then narrates each drift check, the episode, the webhooks, the retrain job
and the promotion as the service's own API reports them. Standard library only (plus the project).
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from service.cli.demo_actors import (
    OPENING_EVENT,
    Api,
    Narrator,
    Receiver,
    Story,
    cli_output,
    observe,
    serving,
)
from service.cli.demo_actors import DemoOptions as DemoOptions

MODEL = "driftloop-demo"
MARKER = ".driftloop-demo"  # only a folder carrying it is ever wiped
BATCH = 100
WINDOW = 500

# Settings that make the whole loop happen in seconds on generated traffic (the demo and the topology test).
FAST_LOOP_ENV: dict[str, str] = {
    "DRIFTLOOP_MODEL_POLL_SECONDS": "1",
    "DRIFTLOOP_DRIFT_CHECK_INTERVAL": "1",
    # 500-row windows: on fewer rows the distance tests flag clean data as drifted
    "DRIFTLOOP_WINDOW_ROWS": str(WINDOW),
    "DRIFTLOOP_MIN_WINDOW_ROWS": "250",
    "DRIFTLOOP_PERFORMANCE_WINDOW_ROWS": "300",
    "DRIFTLOOP_BREACH_K": "2",
    "DRIFTLOOP_BREACH_M": "3",
    "DRIFTLOOP_RETRAIN_POLL_SECONDS": "0.5",
    "DRIFTLOOP_RETRAIN_MIN_ROWS": "300",
    "DRIFTLOOP_RETRAIN_WINDOW_ROWS": "1000",
    # one breach, one retrain: the performance episode that follows the drift one is inside the cooldown
    "DRIFTLOOP_RETRAIN_COOLDOWN_SECONDS": "600",
    "DRIFTLOOP_WEBHOOK_BACKOFF_SECONDS": "0.5",
    "DRIFTLOOP_WEBHOOK_DISPATCH_INTERVAL": "0.5",
}


def service_env(opts: DemoOptions, admin_token: str) -> dict[str, str]:
    """The serve process's settings: inherited DRIFTLOOP_* variables are dropped so the demo never touches
    a configured production database or tracking server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTLOOP_", "MLFLOW_TRACKING_URI"))}
    env.update(
        {
            "DRIFTLOOP_DATA_DIR": str(opts.data_dir.resolve()),
            "DRIFTLOOP_MODEL_NAME": MODEL,
            "DRIFTLOOP_ADMIN_TOKEN": admin_token,
            "DRIFTLOOP_PUBLIC_URL": f"http://{opts.host}:{opts.port}",
            "DRIFTLOOP_EMBEDDED_SCHEDULER": "true",
            **FAST_LOOP_ENV,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def prepare_dir(path: Path, keep: bool) -> None:
    """Wipe the demo folder (unless `keep`), refusing any non-empty folder the demo did not create."""
    if path.exists() and not keep:
        if any(path.iterdir()) and not (path / MARKER).exists():
            raise SystemExit(f"error: {path} is not empty and not a demo folder; choose another --data-dir")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("created by `driftloop demo`; wiped at its next start\n")


# ----- terminal ------------------------------------------------------------------------------------------


def _log_tail(opts: DemoOptions, lines: int = 30) -> str:
    path = opts.data_dir / "serve.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    kept = [line for line in text.splitlines() if "Downloading artifacts" not in line]
    return "\n".join(kept[-lines:])


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run_demo(opts: DemoOptions, out: Any = None) -> int:
    """Tell the story; returns the exit code (0 when every chapter was seen)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the demo like Ctrl-C: service included
    n = Narrator(out)
    opts = DemoOptions(**{**opts.__dict__, "data_dir": opts.data_dir.resolve()})
    token = secrets.token_urlsafe(24)
    base = f"http://{opts.host}:{opts.port}"
    api = Api(base, token)
    if api.ready():
        raise SystemExit(f"error: something already answers on {base}; choose another --port")
    prepare_dir(opts.data_dir, opts.keep)
    env = service_env(opts, token)
    n.say("demo", f"data in {opts.data_dir} · service on {base} · embedded SQLite + local MLflow store")
    t = time.monotonic()
    cli_output(env, opts.data_dir, "db", "upgrade")
    n.say("setup", f"database migrated ({time.monotonic() - t:.1f} s)", "green")
    t = time.monotonic()
    cli_output(env, opts.data_dir, "bootstrap", "--if-missing", "--rows", "3000")
    n.say(
        "setup",
        f"model '{MODEL}' v1 trained on 3000 rows and registered as champion ({time.monotonic() - t:.1f} s)",
        "green",
    )
    receiver = Receiver(secret=secrets.token_urlsafe(24))
    with serving(env, opts) as proc:
        t = time.monotonic()
        while not api.ready():
            if proc.poll() is not None or time.monotonic() - t > 90:
                n.say("error", f"the service did not start:\n{_log_tail(opts)}", "red")
                return 1
            time.sleep(0.2)
        n.say(
            "setup",
            f"driftloop serve is up with its embedded scheduler ({time.monotonic() - t:.1f} s)",
            "green",
        )
        hook_url = receiver.start()
        try:
            hook = api.call(
                "POST",
                "/v1/webhooks",
                {"url": hook_url, "event_types": ["*"], "secret": receiver.secret},
                admin=True,
            )
            n.say(
                "webhook", f"receiver listening on {hook_url}, registered as webhook #{hook['id']}", "green"
            )
            code = _replay(api, opts, n, receiver, proc)
        finally:
            receiver.stop()
        if code != 0 or opts.exit_when_done:
            return code
        n.say("running", "the service keeps running (logs: serve.log in the data folder); Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            proc.wait()
        return 0


def _replay(api: Api, opts: DemoOptions, n: Narrator, receiver: Receiver, proc: Any) -> int:
    from retrain.synthetic import FEATURES, TARGET, DriftPlan, generate

    drift_at = max(WINDOW, (opts.rows // 3) // WINDOW * WINDOW)  # a window boundary: clean windows stay clean
    plan = DriftPlan(covariate_at=drift_at, concept_at=drift_at)
    n.say(
        "traffic",
        f"replaying {opts.rows} generated rows in batches of {BATCH}, labels fed back at once; "
        f"covariate + concept drift from row {drift_at}",
        "cyan",
    )
    story = Story()
    sent = labels = 0
    started = time.monotonic()
    last_observe = 0.0
    versions: dict[str, int] = {}
    while not story.done:
        if time.monotonic() - started > opts.timeout:
            return _timed_out(n, story, opts)
        if proc.poll() is not None:
            n.say("error", f"the service exited with {proc.returncode}:\n{_log_tail(opts)}", "red")
            return 1
        chunk = generate(BATCH, seed=7, drift=plan, offset=sent)
        body = {"instances": chunk[list(FEATURES)].to_dict(orient="records")}
        preds = api.call("POST", "/v1/predict", body)["predictions"]
        items = [
            {"prediction_id": p["prediction_id"], "label": int(y)}
            for p, y in zip(preds, chunk[TARGET], strict=True)
        ]
        labels += api.call("POST", "/v1/feedback", {"items": items})["stored"]
        sent += len(preds)
        version = preds[-1]["model_version"]
        versions[version] = versions.get(version, 0) + len(preds)
        if version != story.serving:
            observe(api, story, n.say)  # the promotion is told before the first answer of the new version
            story.serving = version
            n.say(
                "serve", f"predictions are now answered by version {version} (hot swap, no restart)", "green"
            )
        phase = "drifted" if sent > drift_at else "normal"
        per_version = ", ".join(f"v{v}: {c}" for v, c in sorted(versions.items()))
        n.progress(f"{sent} rows sent ({phase} traffic) · {labels} labels · served by {per_version}")
        while True:
            try:
                kind, event_id, ok, payload = receiver.events.get_nowait()
            except queue.Empty:
                break
            story.webhooks.append(kind)
            n.say(
                "webhook",
                f"<- {kind} (event {event_id[:8]}…, signature {'ok' if ok else 'BAD'}): "
                f"{payload.get('summary', '')}",
                "green" if ok else "red",
            )
        if time.monotonic() - last_observe > 0.7:
            last_observe = time.monotonic()
            observe(api, story, n.say)
        # the planned rows go fast; afterwards a trickle keeps windows filling until the loop closes
        time.sleep(0.15 if sent < opts.rows else 0.4)
    n.end_progress()
    elapsed = time.monotonic() - n.t0
    counts = f"{len(story.runs)} checks, {len(story.episodes)} episode(s), {len(story.jobs)} retrain(s)"
    text = f"the loop closed in {elapsed:.0f} s: {sent} rows, {counts}, champion now version {story.champion}"
    n.say("done", text, "green")
    base = api.base
    report = story.breach_run or max(story.runs, default=None)
    print(f"\n  dashboard     {base}/", file=n.out)
    if report is not None:
        print(f"  drift report  {base}/v1/drift/runs/{report}/report.html", file=n.out)
    print(f"  API docs      {base}/docs\n", file=n.out)
    n.out.flush()
    return 0


def _timed_out(n: Narrator, story: Story, opts: DemoOptions) -> int:
    n.end_progress()
    missing = []
    if story.breach_run is None:
        missing.append("a drift check finding drift")
    if not story.jobs:
        missing.append("a retrain job")
    if story.champion in (None, "1"):
        missing.append("a promotion")
    if "model.promoted" not in story.webhooks:
        missing.append("the model.promoted webhook")
    for kind in sorted(story.episodes_opened):
        event = OPENING_EVENT.get(kind)
        if event and event not in story.webhooks:
            missing.append(f"the {event} webhook")
    seen_not = ", ".join(missing) or "version 2 serving"
    text = f"the loop did not close within {opts.timeout:.0f} s; not seen: {seen_not}\n{_log_tail(opts)}"
    n.say("error", text, "red")
    return 1
