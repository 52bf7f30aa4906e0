"""`make bench-load`: 32 concurrent clients for 60 s on a real `driftloop serve` (SQLite, then PostgreSQL).

Passes when there is no 5xx and the `predictions` table holds exactly the 2xx answers: same count, and every
answered `prediction_id` present. The client is Python threads (one keep-alive connection each) because the
check needs every answered id, which wrk does not give; the figures are therefore client-bound, not a speed
benchmark (that is `make bench-serve`). Also imported by the crash and outage tests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from bench._fixtures import create_pg_database, drop_pg_database, register_champion
from bench._procs import Servers, free_port

MODEL = "bench-load"
BIN = Path(sys.executable).parent


@dataclass
class LoadStats:
    ids: list[str] = field(default_factory=list)  # prediction ids of 2xx answers
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # connection-level failures by exception name
    latencies: list[float] = field(default_factory=list)
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, status or -1)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500)

    def percentile(self, q: float) -> float:
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


def bodies(n: int = 200) -> list[bytes]:
    from retrain.synthetic import FEATURES, generate

    frame = generate(n, seed=7)[list(FEATURES)]
    return [json.dumps({"features": r}).encode() for r in frame.to_dict(orient="records")]


def _client(port: int, payloads: list[bytes], stats: LoadStats, stop: threading.Event, offset: int) -> None:
    conn: http.client.HTTPConnection | None = None
    i = offset
    while not stop.is_set():
        body = payloads[i % len(payloads)]
        i += 1
        started = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/v1/predict", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            with stats.lock:
                stats.errors[type(exc).__name__] += 1
                stats.timeline.append((started, -1))
            if conn is not None:
                conn.close()
                conn = None
            time.sleep(0.05)  # the server is down: don't spin
            continue
        with stats.lock:
            stats.statuses[status] += 1
            stats.latencies.append(time.monotonic() - started)
            stats.timeline.append((started, status))
            if 200 <= status < 300:
                stats.ids.extend(p["prediction_id"] for p in json.loads(data)["predictions"])
        if status >= 500:
            time.sleep(0.01)
    if conn is not None:
        conn.close()


@contextmanager
def load(port: int, clients: int = 32, payloads: list[bytes] | None = None) -> Iterator[LoadStats]:
    """Run `clients` threads posting single records until the block ends; yields the live stats."""
    stats = LoadStats()
    stop = threading.Event()
    payloads = payloads or bodies()
    threads = [
        threading.Thread(target=_client, args=(port, payloads, stats, stop, i * 7), daemon=True)
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    try:
        yield stats
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)


def logged_ids(url: str, ids: list[str] | None = None) -> set[str]:
    """Prediction ids in the database (all of them, or those of `ids` that are present)."""
    from service.db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if ids is None:
                return set(conn.execute(sa.text("SELECT id FROM predictions")).scalars())
            found: set[str] = set()
            for i in range(0, len(ids), 5000):
                stmt = sa.text("SELECT id FROM predictions WHERE id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                )
                found.update(conn.execute(stmt, {"ids": ids[i : i + 5000]}).scalars())
            return found
    finally:
        engine.dispose()


@dataclass
class Serve:
    """A `driftloop serve` subprocess on a scratch data dir with a registered champion."""

    root: Path
    database_url: str
    servers: Servers
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def prepare(cls, root: Path, database_url: str, tracking_uri: str | None = None, **env: str) -> Serve:
        from service.db.engine import upgrade

        tracking_uri = tracking_uri or f"sqlite:///{root / 'mlflow.db'}"
        if tracking_uri.startswith("sqlite"):
            register_champion(tracking_uri, root / "mlartifacts", MODEL)
        upgrade(database_url)
        full = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DRIFTLOOP_DATA_DIR": str(root),
            "DRIFTLOOP_DATABASE_URL": database_url,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "DRIFTLOOP_MODEL_NAME": MODEL,
            "DRIFTLOOP_EMBEDDED_SCHEDULER": "false",
            **env,
        }
        return cls(root, database_url, Servers(root), env=full)

    def start(self, name: str = "serve") -> None:
        self.port = self.port or free_port()
        argv = [str(BIN / "driftloop"), "serve", "--port", str(self.port)]
        self.servers.start(name, argv, self.env)
        self.servers.wait_ready(name, f"http://127.0.0.1:{self.port}/readyz", timeout=90)

    def log(self, name: str = "serve") -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def run(database_url: str, root: Path, seconds: float, clients: int) -> tuple[LoadStats, int, int]:
    """Load a fresh server; returns (stats, rows in the table, answered ids missing from it)."""
    serve = Serve.prepare(root, database_url)
    try:
        serve.start()
        with load(serve.port, clients) as stats:
            time.sleep(seconds)
    finally:
        serve.servers.stop_all()
    rows = logged_ids(database_url)
    return stats, len(rows), len(set(stats.ids) - rows)


def report(label: str, stats: LoadStats, rows: int, missing: int, seconds: float) -> bool:
    ok = stats.server_errors == 0 and rows == stats.ok and missing == 0 and not stats.errors
    print(
        f"{label:9s} 2xx={stats.ok} 5xx={stats.server_errors} other={dict(stats.statuses)} "
        f"conn_errors={dict(stats.errors)} req/s={stats.ok / seconds:.0f} p50={stats.percentile(0.5):.1f}ms "
        f"p99={stats.percentile(0.99):.1f}ms logged_rows={rows} answered_missing={missing} "
        f"-> {'OK' if ok else 'FAIL'}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    passed = True
    with tempfile.TemporaryDirectory(prefix="driftloop-load-") as tmp:
        root = Path(tmp) / "sqlite"
        root.mkdir()
        stats, rows, missing = run(f"sqlite:///{root / 'driftloop.db'}", root, args.seconds, args.clients)
        passed &= report("sqlite", stats, rows, missing, args.seconds)
        if not args.no_postgres:
            url = create_pg_database()
            try:
                root = Path(tmp) / "postgres"
                root.mkdir()
                stats, rows, missing = run(url, root, args.seconds, args.clients)
                passed &= report("postgres", stats, rows, missing, args.seconds)
            finally:
                drop_pg_database(url)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
