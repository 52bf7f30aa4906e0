"""The demo's actors: the narrator, the local webhook receiver, the API client, the story it observes,
and the `driftloop serve` process it runs."""

from __future__ import annotations

import contextlib
import json
import os
import queue
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

from service.alerts.verify import verify


@dataclass(frozen=True)
class DemoOptions:
    data_dir: Path = Path("data/demo")
    host: str = "127.0.0.1"
    port: int = 8000
    rows: int = 3000
    keep: bool = False
    exit_when_done: bool = False
    timeout: float = 170.0  # the story must end within three minutes


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


OPENING_EVENT = {"drift": "drift.detected", "performance": "performance.degraded"}


@dataclass
class Story:
    """What has been shown so far (each thing is told once)."""

    runs: set[int] = field(default_factory=set)
    episodes: dict[int, str] = field(default_factory=dict)
    jobs: dict[int, str] = field(default_factory=dict)
    webhooks: list[str] = field(default_factory=list)
    breach_run: int | None = None
    episodes_opened: set[str] = field(default_factory=set)
    champion: str | None = "1"
    serving: str = "1"
    promoted_at: float | None = None

    @property
    def done(self) -> bool:
        # every episode told in the terminal also arrives as its signed webhook before the story ends
        opened = {OPENING_EVENT.get(kind) for kind in self.episodes_opened} - {None}
        return (
            self.champion not in (None, "1")
            and self.serving == self.champion
            and "model.promoted" in self.webhooks
            and opened <= set(self.webhooks)
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
            if ep["status"] == "open":
                story.episodes_opened.add(ep["kind"])
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


def cli_output(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli.main", *args], env=env, cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"driftloop {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


@contextlib.contextmanager
def serving(env: dict[str, str], opts: DemoOptions) -> Iterator[subprocess.Popen[bytes]]:
    log = (opts.data_dir / "serve.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "service.cli.main",
        "serve",
        "--host",
        opts.host,
        "--port",
        str(opts.port),
    ]
    proc = subprocess.Popen(
        command, env=env, cwd=opts.data_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield proc
    finally:
        _stop(proc)
        log.close()
