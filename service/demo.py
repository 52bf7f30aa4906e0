"""`driftloop demo`: the whole loop on the embedded default (SQLite + local MLflow store), in the terminal.

It migrates and bootstraps a scratch data folder, starts `driftloop serve` (embedded scheduler, small windows,
short intervals), registers a local webhook receiver, replays generated traffic with covariate and concept
drift and feeds the labels back, then narrates each drift check, the episode, the webhooks, the retrain job
and the promotion as the service's own API reports them. Standard library only (plus the project).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from service.webhook_verify import verify

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


@dataclass(frozen=True)
class DemoOptions:
    data_dir: Path = Path("data/demo")
    host: str = "127.0.0.1"
    port: int = 8000
    rows: int = 3000
    keep: bool = False
    exit_when_done: bool = False
    timeout: float = 170.0  # the story must end within three minutes


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


class Narrator:
    """Story lines scroll; on a terminal the traffic line stays at the bottom, redrawn with `\\r`."""

    def __init__(self, stream: Any = None) -> None:
        self.out = stream or sys.stdout
        self.tty = bool(getattr(self.out, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")
        self.t0 = time.monotonic()
        self.status = ""
        self._last_plain = 0.0

    def _paint(self, text: str, color: str) -> str:
        codes = {"green": "32", "yellow": "33", "red": "31", "cyan": "36", "bold": "1", "dim": "2"}
        return f"\033[{codes[color]}m{text}\033[0m" if self.tty and color in codes else text

    def say(self, tag: str, text: str, color: str = "") -> None:
        stamp = f"[{time.monotonic() - self.t0:6.1f}s]"
        line = f"{self._paint(stamp, 'dim')} {self._paint(f'{tag:<9}', color or 'bold')} {text}"
        if self.tty:
            self.out.write("\r\033[K" + line + "\n" + self.status)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def progress(self, text: str, force: bool = False) -> None:
        self.status = self._paint("traffic   ", "cyan") + text
        if self.tty:
            self.out.write("\r\033[K" + self.status)
            self.out.flush()
        elif force or time.monotonic() - self._last_plain > 5:  # a log, not an animation
            self._last_plain = time.monotonic()
            self.say("traffic", text, "cyan")

    def end_progress(self) -> None:
        if self.tty and self.status:
            self.out.write("\r\033[K")
        self.status = ""


# ----- the webhook receiver ------------------------------------------------------------------------------


@dataclass
class Receiver:
    secret: str
    events: queue.Queue[tuple[str, str, bool, dict[str, Any]]] = field(default_factory=queue.Queue)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = verify(
                    receiver.secret,
                    self.headers.get("X-Driftloop-Timestamp", ""),
                    body,
                    self.headers.get("X-Driftloop-Signature", ""),
                )
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {}
                kind = self.headers.get("X-Driftloop-Event-Type", "?")
                receiver.events.put((kind, self.headers.get("X-Driftloop-Event-Id", "?"), ok, payload))
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# ----- talking to the service ----------------------------------------------------------------------------


class Api:
    def __init__(self, base: str, admin_token: str) -> None:
        self.base = base
        self.admin_token = admin_token

    def call(self, method: str, path: str, body: Any = None, admin: bool = False, timeout: float = 30) -> Any:
        headers = {"Content-Type": "application/json"}
        if admin:
            headers["Authorization"] = f"Bearer {self.admin_token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


@dataclass
class Story:
    """What has been shown so far (each thing is told once)."""

    runs: set[int] = field(default_factory=set)
    episodes: dict[int, str] = field(default_factory=dict)
    jobs: dict[int, str] = field(default_factory=dict)
    webhooks: list[str] = field(default_factory=list)
    breach_run: int | None = None
    champion: str | None = "1"
    serving: str = "1"
    promoted_at: float | None = None

    @property
    def done(self) -> bool:
        return (
            self.champion not in (None, "1")
            and self.serving == self.champion
            and "model.promoted" in self.webhooks
        )


def _run_line(run: dict[str, Any]) -> tuple[str, str]:
    window = run["window_key"].rsplit(":", 1)[-1]
    head = f"#{run['id']} {run['kind']:<11} v{run['model_version']} window {window} ({run['n_rows']} rows): "
    if run["status"] == "insufficient_data":
        return head + "too few rows", "dim"
    if run["kind"] == "drift":
        share = f"{run['drift_share']:.0%} of features drifted"
        return head + ("DRIFT, " + share if run["dataset_drift"] else "no drift, " + share), (
            "red" if run["is_breach"] else "green"
        )
    return head + run["message"], "red" if run["is_breach"] else "green"


def observe(api: Api, story: Story, say: Any) -> None:
    """Tell every new check, episode change, retrain job change and promotion the API reports."""
    runs = api.call("GET", "/v1/drift/runs?limit=50")["items"]
    for run in sorted(runs, key=lambda r: r["id"]):
        if run["id"] in story.runs:
            continue
        story.runs.add(run["id"])
        text, color = _run_line(run)
        say("check", text, color)
        if run["is_breach"] and run["kind"] == "drift" and story.breach_run is None:
            story.breach_run = run["id"]
    for ep in sorted(api.call("GET", "/v1/episodes")["items"], key=lambda e: e["id"]):
        if story.episodes.get(ep["id"]) != ep["status"]:
            story.episodes[ep["id"]] = ep["status"]
            verb = "OPENED" if ep["status"] == "open" else "closed"
            text = f"#{ep['id']} {ep['kind']} breach episode {verb} (first run #{ep['first_run_id']})"
            say("episode", text, "yellow" if ep["status"] == "open" else "green")
    for job in sorted(api.call("GET", "/v1/retrain/jobs"), key=lambda j: j["id"]):
        if story.jobs.get(job["id"]) == job["status"]:
            continue
        story.jobs[job["id"]] = job["status"]
        text = f"job #{job['id']} {job['status']} (trigger: {job['trigger']}, {job['reason']})"
        details = job.get("details") or {}
        if job["status"] == "succeeded":
            nan = float("nan")
            text = (
                f"job #{job['id']} succeeded: challenger {details.get('challenger_score', nan):.3f} vs "
                f"champion {details.get('champion_score', nan):.3f} on the holdout -> version "
                f"{job['result_version']}"
            )
        elif job["status"] in ("failed", "rejected"):
            text += f": {job.get('error') or details.get('reason', '')}"
        say("retrain", text, "green" if job["status"] == "succeeded" else "yellow")
    models = api.call("GET", "/v1/models")
    champion = next((v["version"] for v in models["versions"] if "champion" in v["aliases"]), None)
    if champion != story.champion:
        story.champion = champion
        story.promoted_at = time.monotonic()
        say("promote", f"alias 'champion' -> version {champion} in MLflow", "green")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: uvicorn and its children
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", *args], env=env, cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"driftloop {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


@contextlib.contextmanager
def serving(env: dict[str, str], opts: DemoOptions) -> Iterator[subprocess.Popen[bytes]]:
    log = (opts.data_dir / "serve.log").open("wb")
    command = [sys.executable, "-m", "service.cli", "serve", "--host", opts.host, "--port", str(opts.port)]
    proc = subprocess.Popen(
        command, env=env, cwd=opts.data_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield proc
    finally:
        _stop(proc)
        log.close()


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
    _cli(env, opts.data_dir, "db", "upgrade")
    n.say("setup", f"database migrated ({time.monotonic() - t:.1f} s)", "green")
    t = time.monotonic()
    _cli(env, opts.data_dir, "bootstrap", "--if-missing", "--rows", "3000")
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
    seen_not = ", ".join(missing) or "version 2 serving"
    text = f"the loop did not close within {opts.timeout:.0f} s; not seen: {seen_not}\n{_log_tail(opts)}"
    n.say("error", text, "red")
    return 1
