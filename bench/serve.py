"""`make bench-serve`: `mlflow models serve` vs driftloop's `/invocations` (every prediction logged), then
five models in one driftloop process vs one (bench/_serve_many.py, written to bench/RESULTS.md).

Both serve the same champion from a scratch MLflow store and get the same load from wrk: single-row
`dataframe_records` requests on 32 connections, a warm-up, then timed runs. The servers stay up side by
side and are driven one at a time, round after round in alternating order (`--rounds`), so neither steals
CPU from the other and each round's ratio compares runs seconds apart; medians over the rounds. After
each run the rows in driftloop's `predictions` table must equal the 2xx responses it gave (exit 1
otherwise). driftloop runs on SQLite and, when reachable, on PostgreSQL; `--only many-postgres` adds the
five-model comparison on PostgreSQL. Defaults take about 9 minutes (one-model rounds ~4, five-model ~5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
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
from bench._procs import Servers, cpu_seconds, free_port
from bench._serve_many import run_many
from bench._wrk import LoadResult, require_wrk, run_wrk

MODEL = "bench-serve"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Run:
    label: str
    load: LoadResult
    logged: int | None = None  # rows added to `predictions` during the timed run
    cpu_s: float = 0.0  # the server's CPU seconds during the timed run (its process tree)

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / self.load.ok * 1e6 if self.load.ok else 0.0

    @property
    def logging_ok(self) -> bool:
        return self.logged is None or self.logged == self.load.ok


@dataclass(frozen=True)
class Target:
    label: str
    name: str  # the Servers entry
    url: str  # the scoring URL
    count: Callable[[], int] | None = None  # rows in its log; None: it logs nothing (mlflow)


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="timed run per server and round")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=1, help="1 leaves the most CPU to the server")
    parser.add_argument("--workers", type=int, default=1, help="driftloop uvicorn workers")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL runs")
    parser.add_argument(
        "--only", choices=["mlflow", "sqlite", "postgres", "many", "many-postgres"], action="append",
        help="default: all but many-postgres (the five-model comparison on PostgreSQL)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed rounds (medians)")
    # many short rounds: the shared machine's speed swings by a third within tens of seconds, so a
    # pair of runs a few seconds apart, and a median over many pairs, is what compares the two servers
    parser.add_argument(
        "--many-rounds", type=int, default=12, help="alternating timed rounds of the five-model comparisons"
    )
    parser.add_argument(
        "--many-seconds", type=float, default=6.0, help="timed run per server and round (five models)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, databases)")
    return parser.parse_args(argv)


def _post(url: str, body: str) -> str:
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: bytes = response.read()
        return answer.decode()


class Bench:
    """The servers stay up side by side (idle ones cost next to nothing) and get their timed runs in
    turn, round after round in alternating order, so that every ratio compares runs a few seconds apart
    on the same machine, and medians over rounds smooth out the shared machine's swings."""

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

    def timed(self, target: Target) -> Run:
        before = target.count() if target.count else None
        pid = self.servers.pid(target.name)
        cpu = cpu_seconds(pid)
        result = self.load(target.url, self.args.seconds)
        cpu = cpu_seconds(pid) - cpu
        logged = target.count() - before if target.count and before is not None else None
        return Run(target.label, result, logged, cpu)

    def mlflow(self) -> Target:
        port = free_port()
        argv = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion"]
        argv += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "--workers", "1"]
        print("starting mlflow models serve (1 worker) ...")
        self.servers.start("mlflow", argv, self.env)
        self.servers.wait_ready("mlflow", f"http://127.0.0.1:{port}/ping")
        return Target("mlflow models serve", "mlflow", f"http://127.0.0.1:{port}/invocations")

    def driftloop(self, label: str, database_url: str) -> Target:
        port = free_port()
        env = {
            **self.env,
            "DRIFTLOOP_DATA_DIR": str(self.tmp),
            "DRIFTLOOP_DATABASE_URL": database_url,
            "DRIFTLOOP_MODEL_NAME": MODEL,
            "DRIFTLOOP_EMBEDDED_SCHEDULER": "false",
        }
        print(f"starting driftloop serve --workers {self.args.workers} on {label} ...")
        subprocess.run([str(BIN / "driftloop"), "db", "upgrade"], env=env, check=True, capture_output=True)
        name = f"driftloop-{label}"
        argv = [str(BIN / "driftloop"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        self.servers.start(name, [*argv, "--workers", str(self.args.workers)], env)
        self.servers.wait_ready(name, f"http://127.0.0.1:{port}/readyz")
        return Target(
            f"driftloop ({label}, {self.args.workers} worker)", name,
            f"http://127.0.0.1:{port}/invocations", lambda: count_predictions(database_url),
        )  # fmt: skip

    def rounds(self, targets: list[Target]) -> list[list[Run]]:
        """Per round, one timed run of every target (in the targets' order)."""
        for t in targets:
            print(f"  {t.label}: check {_post(t.url, self.bodies[0])[:100]}")
            print(f"  {t.label}: warm-up {self.load(t.url, self.args.warmup).rps:,.0f} req/s")
        done: list[list[Run]] = []
        for i in range(self.args.rounds):
            order = targets if i % 2 == 0 else targets[::-1]
            runs: dict[str, Run] = {}
            for t in order:
                load_avg = os.getloadavg()[0]
                runs[t.label] = run = self.timed(t)
                print(
                    f"  round {i + 1}/{self.args.rounds}, {t.label}: load average {load_avg:.1f}, "
                    f"{run.load.rps:,.0f} req/s, p99 {run.load.p99_ms:.1f} ms, "
                    f"server CPU {run.cpu_us_per_request:,.0f} us/request"
                )
            done.append([runs[t.label] for t in targets])
        for t in targets:
            self.servers.stop(t.name)
        return done


def _report(rounds: list[list[Run]], args: argparse.Namespace, load_range: tuple[float, float]) -> bool:
    print()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average {load_range[0]:.1f} "
        f"before, {load_range[1]:.1f} after; {args.connections} connections, single-row dataframe_records, "
        f"{len(rounds)} alternating rounds of {args.seconds:.0f} s after a {args.warmup:.0f} s warm-up"
    )
    print(
        f"| {'round':>5} | {'server':<34} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'non-2xx':>7} "
        f"| {'x mlflow':>8} | {'CPU us/req':>10} | logged = 2xx |"
    )
    print(f"|{'-' * 7}|{'-' * 36}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 10}|{'-' * 12}|{'-' * 14}|")
    ratios: dict[str, list[float]] = {}
    for i, runs in enumerate(rounds):
        anchor = next((r for r in runs if r.logged is None), None)
        for r in runs:
            x = r.load
            check = "n/a (no log)" if r.logged is None else "PASS" if r.logging_ok else f"FAIL {r.logged}"
            shown = ""
            if anchor is not None and r is not anchor and anchor.load.rps > 0:
                ratios.setdefault(r.label, []).append(x.rps / anchor.load.rps)
                shown = f"{ratios[r.label][-1]:.1f}x"
            print(
                f"| {i + 1:>5} | {r.label:<34} | {x.rps:>8,.0f} | {x.p50_ms:>7.2f} | {x.p99_ms:>7.2f} | "
                f"{x.other + x.socket_errors:>7} | {shown:>8} | {r.cpu_us_per_request:>10,.0f} | "
                f"{check:>12} |"
            )
    labels = [r.label for r in rounds[0]] if rounds else []
    anchor_runs = [r for rs in rounds for r in rs if r.logged is None]
    anchor_cpu = statistics.median(r.cpu_us_per_request for r in anchor_runs) if anchor_runs else 0.0
    for label in labels:
        runs = [r for rs in rounds for r in rs if r.label == label]
        rps = statistics.median(r.load.rps for r in runs)
        p99 = statistics.median(r.load.p99_ms for r in runs)
        cpu = statistics.median(r.cpu_us_per_request for r in runs)
        line = f"median {label}: {rps:,.0f} req/s, p99 {p99:.1f} ms, server CPU {cpu:,.0f} us/request"
        if runs[0].logged is not None:
            logged_ok = all(r.logging_ok for r in runs)
            line += f", logged rows == 2xx in every round: {'PASS' if logged_ok else 'FAIL'}"
        if label in ratios:
            ratio = statistics.median(ratios[label])
            verdict = "goal met" if ratio >= 20 else "met" if ratio >= 10 else "NOT met"
            line += (
                f"; {ratio:.1f}x mlflow (median of the rounds' ratios; target >= 10x, goal 20x: {verdict})"
            )
            line += f"; p99 < 50 ms: {'met' if p99 < 50 else 'NOT met'}"
            if anchor_cpu:
                line += f"; mlflow needs {anchor_cpu / cpu:.1f}x its CPU per request" if cpu else ""
        print(line)
    cpu = max((r.load.client_cpu for rs in rounds for r in rs), default=0.0)
    print(f"load generator (wrk) used at most {cpu:.0%} of one core")
    return all(r.logging_ok and r.load.ok > 0 for rs in rounds for r in rs)


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
    try:
        print(f"scratch directory {tmp}; registering the demo champion ...")
        register_champion(f"sqlite:///{tmp / 'mlflow.db'}", tmp / "mlartifacts", MODEL)
        bench = Bench(args, tmp, servers)
        load_before = os.getloadavg()[0]
        targets: list[Target] = []
        if "mlflow" in only:
            targets.append(bench.mlflow())
        if "sqlite" in only:
            targets.append(bench.driftloop("sqlite", f"sqlite:///{tmp / 'driftloop.db'}"))
        if "postgres" in only and not args.no_postgres:
            try:
                pg_url = create_pg_database()
            except Exception as exc:  # report, don't hide: the SQLite figures still stand
                print(f"PostgreSQL run skipped: cannot create a database on 127.0.0.1:5432 ({exc})")
            else:
                targets.append(bench.driftloop("postgres", pg_url))
        ok = True
        if targets:
            rounds = bench.rounds(targets)
            ok = _report(rounds, args, (load_before, os.getloadavg()[0]))
        for backend in [b for b in ("many", "many-postgres") if b in only]:
            if backend == "many-postgres" and args.no_postgres:
                continue
            print()
            ok = run_many(
                tmp=tmp, servers=servers, env=bench.env, bodies=bench.bodies, connections=args.connections,
                seconds=args.many_seconds, warmup=args.warmup, rounds=args.many_rounds,
                write=not args.no_write, postgres=backend == "many-postgres",
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
