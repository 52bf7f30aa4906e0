"""`make bench-serve`: `mlflow models serve` vs driftloop's `/invocations` (every prediction logged), then
five models in one driftloop process vs one (bench/_serve_many.py, written to bench/RESULTS.md).

Both serve the same champion from a scratch MLflow store and get the same load from wrk: single-row
`dataframe_records` requests on 32 connections, a warm-up, then a timed run. Servers run one at a time so
neither steals CPU from the other. Afterwards the rows in driftloop's `predictions` table must equal the
2xx responses it gave (exit 1 otherwise). driftloop runs on SQLite and, when reachable, on PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench._fixtures import (
    count_predictions,
    create_pg_database,
    drop_pg_database,
    register_champion,
    request_bodies,
)
from bench._procs import Servers, free_port
from bench._serve_many import run_many
from bench._wrk import LoadResult, require_wrk, run_wrk

MODEL = "bench-serve"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Run:
    label: str
    load: LoadResult
    logged: int | None = None  # rows added to `predictions` during the timed run

    @property
    def logging_ok(self) -> bool:
        return self.logged is None or self.logged == self.load.ok


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="timed run per server")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=1, help="1 leaves the most CPU to the server")
    parser.add_argument("--workers", type=int, default=1, help="driftloop uvicorn workers")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL run")
    parser.add_argument("--only", choices=["mlflow", "sqlite", "postgres", "many"], action="append")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the five-model run")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, databases)")
    return parser.parse_args(argv)


def _post(url: str, body: str) -> str:
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: bytes = response.read()
        return answer.decode()


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, servers: Servers) -> None:
        self.args = args
        self.tmp = tmp
        self.servers = servers
        self.tracking_uri = f"sqlite:///{tmp / 'mlflow.db'}"
        self.bodies = request_bodies(256)
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow starts uvicorn from PATH
            "MLFLOW_TRACKING_URI": self.tracking_uri,
        }

    def load(self, url: str, seconds: float) -> LoadResult:
        a = self.args
        return run_wrk(
            url,
            self.bodies,
            seconds=seconds,
            connections=a.connections,
            threads=a.wrk_threads,
            script_dir=self.tmp,
        )

    def drive(self, url: str, count: Callable[[], int] | None = None) -> tuple[LoadResult, int | None]:
        print(f"  check: {_post(url, self.bodies[0])[:120]}")
        warm = self.load(url, self.args.warmup)
        print(f"  warm-up: {warm.rps:,.0f} req/s")
        before = count() if count else None
        print(f"  timed run, load average before: {os.getloadavg()[0]:.1f}")
        result = self.load(url, self.args.seconds)
        logged = count() - before if count and before is not None else None
        return result, logged

    def mlflow(self) -> Run:
        port = free_port()
        argv = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion"]
        argv += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "--workers", "1"]
        print("mlflow models serve (1 worker) ...")
        self.servers.start("mlflow", argv, self.env)
        try:
            self.servers.wait_ready("mlflow", f"http://127.0.0.1:{port}/ping")
            load, _ = self.drive(f"http://127.0.0.1:{port}/invocations")
        finally:
            self.servers.stop("mlflow")
        return Run("mlflow models serve", load)

    def driftloop(self, label: str, database_url: str) -> Run:
        port = free_port()
        env = {
            **self.env,
            "DRIFTLOOP_DATA_DIR": str(self.tmp),
            "DRIFTLOOP_DATABASE_URL": database_url,
            "DRIFTLOOP_MODEL_NAME": MODEL,
            "DRIFTLOOP_EMBEDDED_SCHEDULER": "false",
        }
        print(f"driftloop serve --workers {self.args.workers} on {label} ...")
        subprocess.run([str(BIN / "driftloop"), "db", "upgrade"], env=env, check=True, capture_output=True)
        name = f"driftloop-{label}"
        argv = [str(BIN / "driftloop"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        self.servers.start(name, [*argv, "--workers", str(self.args.workers)], env)
        try:
            self.servers.wait_ready(name, f"http://127.0.0.1:{port}/readyz")
            load, logged = self.drive(
                f"http://127.0.0.1:{port}/invocations", lambda: count_predictions(database_url)
            )
        finally:
            self.servers.stop(name)
        return Run(f"driftloop ({label}, {self.args.workers} worker)", load, logged)


def _report(runs: list[Run], args: argparse.Namespace) -> bool:
    print()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, {args.connections} connections, "
        f"single-row dataframe_records, {args.seconds:.0f} s timed after {args.warmup:.0f} s warm-up"
    )
    print(
        f"| {'server':<34} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'non-2xx':>7} | logged = 2xx |"
    )
    print(f"|{'-' * 36}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 14}|")
    for r in runs:
        x = r.load
        check = "n/a (no log)" if r.logged is None else "PASS" if r.logging_ok else f"FAIL {r.logged}"
        print(
            f"| {r.label:<34} | {x.rps:>8,.0f} | {x.p50_ms:>7.2f} | {x.p99_ms:>7.2f} | "
            f"{x.other + x.socket_errors:>7} | {check:>12} |"
        )
    mlflow = next((r for r in runs if r.logged is None), None)
    for r in runs:
        if r.logged is not None:
            verdict = "PASS" if r.logging_ok else "FAIL"
            line = f"{r.label}: logged {r.logged} rows for {r.load.ok} 2xx -> {verdict}"
            if mlflow and mlflow.load.rps > 0:
                ratio = r.load.rps / mlflow.load.rps
                target = "met" if ratio >= 10 and r.load.p99_ms < 50 else "NOT met"
                line += f"; {ratio:.1f}x mlflow, p99 {r.load.p99_ms:.1f} ms"
                line += f" (target >= 10x, p99 < 50 ms: {target})"
            print(line)
    cpu = max(r.load.client_cpu for r in runs)
    print(f"load generator (wrk) used at most {cpu:.0%} of one core")
    return all(r.logging_ok and r.load.ok > 0 for r in runs)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    require_wrk()
    only = set(args.only or ["mlflow", "sqlite", "postgres", "many"])
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background, where SIGINT is ignored
    tmp = Path(tempfile.mkdtemp(prefix="driftloop-bench-"))
    servers = Servers(tmp)
    pg_url: str | None = None
    runs: list[Run] = []
    try:
        print(f"scratch directory {tmp}; registering the demo champion ...")
        register_champion(f"sqlite:///{tmp / 'mlflow.db'}", tmp / "mlartifacts", MODEL)
        bench = Bench(args, tmp, servers)
        if "mlflow" in only:
            runs.append(bench.mlflow())
        if "sqlite" in only:
            runs.append(bench.driftloop("sqlite", f"sqlite:///{tmp / 'driftloop.db'}"))
        if "postgres" in only and not args.no_postgres:
            try:
                pg_url = create_pg_database()
            except Exception as exc:  # report, don't hide: the SQLite figures still stand
                print(f"PostgreSQL run skipped: cannot create a database on 127.0.0.1:5432 ({exc})")
            else:
                runs.append(bench.driftloop("postgres", pg_url))
        ok = _report(runs, args) if runs else True
        if "many" in only:
            print()
            ok = run_many(
                tmp=tmp, servers=servers, env=bench.env, bodies=bench.bodies, connections=args.connections,
                seconds=args.seconds, warmup=args.warmup, rounds=args.rounds, write=not args.no_write,
            ) and ok  # fmt: skip
    except KeyboardInterrupt:
        print("\ninterrupted; stopping servers", file=sys.stderr)
        return 130
    finally:
        servers.stop_all()
        if pg_url:
            drop_pg_database(pg_url)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
