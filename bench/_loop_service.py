"""A real `driftloop serve` (embedded scheduler, SQLite + local MLflow store in a scratch dir) and the
HTTP calls the replay makes to it. The database is only read, to know when the scheduler is idle."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from bench._procs import Servers, free_port
from service.monitor.windows import make_key

BIN = Path(sys.executable).parent
MODEL = "bench-loop"
ADMIN_TOKEN = "bench-loop-admin"
TERMINAL = ("succeeded", "rejected", "failed")


def loop_settings(window_rows: int) -> dict[str, str]:
    """Monitoring and retraining tuned to the replay: one check window = one replay window."""
    return {
        "DRIFTLOOP_WINDOW_ROWS": str(window_rows),
        "DRIFTLOOP_PERFORMANCE_WINDOW_ROWS": str(window_rows),
        "DRIFTLOOP_MIN_WINDOW_ROWS": str(window_rows // 2),
        "DRIFTLOOP_DRIFT_CHECK_INTERVAL": "0.5",
        # one breaching window opens an episode: labels already arrive a window late
        "DRIFTLOOP_BREACH_K": "1",
        "DRIFTLOOP_BREACH_M": "2",
        # train on the newest window only: a longer window mixes the old concept into the challenger
        "DRIFTLOOP_RETRAIN_WINDOW_ROWS": str(window_rows),
        "DRIFTLOOP_RETRAIN_MIN_ROWS": str(window_rows // 2),
        # the replay compresses a window into ~2 s, so a wall-clock cooldown would span many windows
        "DRIFTLOOP_RETRAIN_COOLDOWN_SECONDS": "0",
        "DRIFTLOOP_RETRAIN_POLL_SECONDS": "0.5",
        "DRIFTLOOP_MODEL_POLL_SECONDS": "0.5",
    }


def policy_settings(policy: str) -> dict[str, str]:
    return {"DRIFTLOOP_RETRAIN_ON_EPISODE": "true" if policy == "driftloop" else "false"}


@dataclass
class LoopServer:
    root: Path
    env: dict[str, str]
    servers: Servers
    port: int = 0
    engine: sa.Engine | None = None

    @classmethod
    def prepare(cls, root: Path, settings: dict[str, str], *, bootstrap: bool = True) -> LoopServer:
        """`driftloop db upgrade` and (unless the caller registers its own model) `driftloop bootstrap`
        (the demo champion, version 1) in `root`."""
        root.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTLOOP_", "MLFLOW_"))}
        env = {
            **base,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DRIFTLOOP_DATA_DIR": str(root),
            "DRIFTLOOP_MODEL_NAME": MODEL,
            "DRIFTLOOP_ADMIN_TOKEN": ADMIN_TOKEN,
            "DRIFTLOOP_EMBEDDED_SCHEDULER": "true",
            **settings,
        }
        for argv in (["db", "upgrade"], *([["bootstrap"]] if bootstrap else [])):
            done = subprocess.run(
                [str(BIN / "driftloop"), *argv], env=env, capture_output=True, text=True, timeout=300
            )
            if done.returncode != 0:
                raise RuntimeError(f"driftloop {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
        return cls(root, env, Servers(root))

    def start(self) -> None:
        self.port = free_port()
        argv = [str(BIN / "driftloop"), "serve", "--port", str(self.port)]
        self.servers.start("serve", argv, self.env)
        self.servers.wait_ready("serve", f"{self.url}/readyz", timeout=120)
        self.engine = sa.create_engine(f"sqlite:///{self.root / 'driftloop.db'}")

    def stop(self) -> None:
        self.servers.stop_all()
        if self.engine is not None:
            self.engine.dispose()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        return self.servers.log_tail("serve", lines)


class Api:
    """The replay's HTTP calls; any non-2xx answer stops the bench with the server's reply."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 300:
            raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} "
                               f"{response.text[:500]}")  # fmt: skip
        return response.json()

    def predict(self, records: list[dict[str, object]]) -> list[dict[str, Any]]:
        predictions: list[dict[str, Any]] = self._ok(
            self.http.post("/v1/predict", json={"instances": records})
        )["predictions"]
        return predictions

    def feedback(self, ids: list[str], labels: list[int]) -> None:
        items = [{"prediction_id": i, "label": y} for i, y in zip(ids, labels, strict=True)]
        body = self._ok(self.http.post("/v1/feedback", json={"items": items}))
        if body["stored"] != len(items):
            raise RuntimeError(f"feedback stored {body['stored']} of {len(items)}: {body}")

    def retrain(self, reason: str, *, force: bool) -> dict[str, Any]:
        body = self._ok(
            self.http.post("/v1/retrain", json={"reason": reason, "force": force}, headers=self.admin)
        )
        job: dict[str, Any] = body["job"]
        return job

    def job(self, job_id: int) -> dict[str, Any]:
        job: dict[str, Any] = self._ok(self.http.get(f"/v1/retrain/jobs/{job_id}"))
        return job

    def serving_version(self) -> str:
        body = self._ok(self.http.get("/readyz"))
        return str(body["checks"]["model"]).removeprefix("version ").strip()

    def close(self) -> None:
        self.http.close()


class Observer:
    """Reads the service's database to tell when the scheduler has done what the last window asks."""

    def __init__(self, engine: sa.Engine, window_rows: int) -> None:
        self.engine = engine
        self.rows = window_rows

    def _scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def active_jobs(self) -> int:
        return int(self._scalar("SELECT count(*) FROM retrain_jobs WHERE status IN ('queued', 'running')"))

    def champion(self) -> str:
        """The champion as the jobs left it (the bench never rolls back): the last promoted version."""
        last = self._scalar(
            "SELECT result_version FROM retrain_jobs WHERE status = 'succeeded' ORDER BY id DESC LIMIT 1"
        )
        return str(last) if last is not None else "1"

    def checks_done(self, version: str) -> bool:
        """The scheduled drift and performance checks of the newest complete windows of `version` exist."""
        served = self._scalar(
            "SELECT count(*) FROM predictions WHERE model_name = :n AND model_version = :v",
            n=MODEL,
            v=version,
        )
        labeled = self._scalar(
            "SELECT count(*) FROM predictions p JOIN feedback f ON f.prediction_id = p.id "
            "WHERE p.model_name = :n AND p.model_version = :v",
            n=MODEL,
            v=version,
        )
        for kind, count in (("drift", served), ("performance", labeled)):
            index = int(count) // self.rows - 1
            if index < 0:
                continue
            key = make_key(kind, MODEL, version, "rows", self.rows, index)
            if not self._scalar("SELECT count(*) FROM drift_runs WHERE window_key = :k", k=key):
                return False
        return True


def settle(api: Api, observer: Observer, *, quiet: float = 1.5, timeout: float = 180.0) -> None:
    """Wait until the checks of the complete windows exist, no retrain job is queued or running and the
    server answers with the champion, and that has held for `quiet` s (the retrain trigger polls at 0.5 s)."""
    deadline = time.monotonic() + timeout
    calm_since: float | None = None
    while time.monotonic() < deadline:
        served = api.serving_version()
        busy = observer.active_jobs() > 0 or served != observer.champion() or not observer.checks_done(served)
        now = time.monotonic()
        if busy:
            calm_since = None
        elif calm_since is None:
            calm_since = now
        elif now - calm_since >= quiet:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the scheduler did not settle within {timeout:.0f} s")


def wait_job(api: Api, job_id: int, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.job(job_id)
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.2)
    raise TimeoutError(f"retrain job {job_id} did not finish within {timeout:.0f} s")


def _when(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Swap:
    """An episode-triggered promotion: from the episode opening to the first prediction of the new version."""

    episode_id: int
    kind: str
    version: str
    opened_at: datetime
    job_created_at: datetime
    job_finished_at: datetime
    first_served_at: datetime | None

    @property
    def seconds(self) -> float | None:
        if self.first_served_at is None:
            return None
        return (self.first_served_at - self.opened_at).total_seconds()


def jobs(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, trigger, status, episode_id, result_version, details, error "
                "FROM retrain_jobs ORDER BY id"
            )
        ).mappings().all()  # fmt: skip
    return [dict(r) for r in rows]


def episodes(engine: sa.Engine) -> list[dict[str, Any]]:
    """Episodes with the message of the check that opened them."""
    sql = (
        "SELECT e.id, e.kind, e.status, e.opened_at, r.summary FROM episodes e "
        "LEFT JOIN drift_runs r ON r.id = e.last_run_id ORDER BY e.id"
    )
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql)).mappings().all()
    return [{**r, "message": orjson.loads(r["summary"] or "{}").get("message", "")} for r in rows]


def swaps(engine: sa.Engine) -> list[Swap]:
    sql = (
        "SELECT e.id, e.kind, j.result_version, e.opened_at, j.created_at, j.finished_at, "
        "(SELECT min(p.created_at) FROM predictions p WHERE p.model_name = :n "
        " AND p.model_version = j.result_version) "
        "FROM retrain_jobs j JOIN episodes e ON e.id = j.episode_id "
        "WHERE j.status = 'succeeded' ORDER BY j.id"
    )
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), {"n": MODEL}).all()
    return [
        Swap(
            int(eid),
            str(kind),
            str(version),
            _when(opened),
            _when(created),
            _when(finished),
            _when(first) if first is not None else None,
        )  # fmt: skip
        for eid, kind, version, opened, created, finished, first in rows
    ]
