"""Five models behind one process vs one model behind one process (`make bench-serve`, `--only many`).

The five are different pipelines on the demo features (the one-model run's logistic pipeline among them),
registered in the scratch MLflow store. Both processes run side by side; timed runs alternate between
them (one, five, five, one, ...) so that both see the same machine, and medians of the rounds are compared.
The total load is the same and made the same way: `connections` closed-loop connections over five wrk
processes of one thread each. In the five-model process each wrk loads one model's
`/models/{name}/invocations` (exact 2xx count per model); in the one-model process all five load
`/invocations`. (Before, the one-model process got one wrk of all connections: on 2 cores a different
client is a different machine for the server.) Then each model gets a one-model process of its own, for
the five-process memory sum.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._loop_report import write_section
from bench._procs import Servers, cpu_seconds, free_port, process_tree
from bench._wrk import LoadResult, run_wrk

# OpenMP-free estimators only: on a shared, loaded machine an OpenMP team (HistGradientBoosting, the
# k-NN reductions) spins for hundreds of ms per small predict call, which would measure the machine
PIPELINES = ("logistic", "ridge", "tree", "boosting", "bayes")


def _pipeline(kind: str) -> tuple[Any, str]:
    """(unfitted estimator, target) of one of the five pipelines on the demo features."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import Ridge
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    from retrain.bootstrap import build_demo_pipeline
    from retrain.synthetic import CATEGORICAL_FEATURES, NUMERIC_FEATURES, TARGET

    num, cat = list(NUMERIC_FEATURES), list(CATEGORICAL_FEATURES)
    onehot = ColumnTransformer(
        [("n", StandardScaler(), num), ("c", OneHotEncoder(handle_unknown="ignore"), cat)]
    )
    ordinal = ColumnTransformer(
        [
            ("n", "passthrough", num),
            ("c", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), cat),
        ]
    )
    if kind == "logistic":
        return build_demo_pipeline(), TARGET
    if kind == "ridge":  # a regressor: the score the demo's label is drawn from, as a number
        return Pipeline([("pre", onehot), ("ridge", Ridge(alpha=1.0))]), "score"
    if kind == "tree":
        return Pipeline(
            [("pre", ordinal), ("tree", DecisionTreeClassifier(max_depth=8, random_state=0))]
        ), TARGET
    if kind == "boosting":
        model = GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=0)
        return Pipeline([("pre", ordinal), ("gb", model)]), TARGET
    if kind == "bayes":
        dense = ColumnTransformer(
            [
                ("n", StandardScaler(), num),
                ("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat),
            ]
        )
        return Pipeline([("pre", dense), ("nb", GaussianNB())]), TARGET
    raise ValueError(f"unknown pipeline {kind!r}; known: {', '.join(PIPELINES)}")


def register_five(tracking_uri: str, artifact_dir: Path, prefix: str) -> list[str]:
    """Train and register the five pipelines as `<prefix>-<kind>`, each its own champion."""
    from retrain.registry import Registry
    from retrain.synthetic import FEATURES, TARGET, generate

    registry = Registry(tracking_uri, artifact_location=artifact_dir.resolve().as_uri())
    data = generate(4000, seed=11)
    # a continuous target for the regressor: a fixed linear score of the numeric features
    data["score"] = (data["age"] / 10 + data["tenure_months"] / 12 - data["num_products"]).astype(float)
    names = []
    for kind in PIPELINES:
        model, target = _pipeline(kind)
        model.fit(data[list(FEATURES)], data[target])
        name = f"{prefix}-{kind}"
        frame = data.drop(columns=["score"] if target == TARGET else [TARGET])
        version = registry.log_and_register(
            name, model, frame, features=list(FEATURES), target=target, run_name=f"bench {kind}",
            tags={"trigger": "bootstrap"},
        )  # fmt: skip
        registry.promote(name, version.version)
        names.append(name)
    return names


def split(connections: int, parts: int) -> list[int]:
    """`connections` spread over `parts` as evenly as whole numbers allow (32 over 5: 7, 7, 6, 6, 6)."""
    return [connections // parts + (1 if i < connections % parts else 0) for i in range(parts)]


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants (uvicorn workers), in MiB, from /proc."""
    total = 0
    for current in process_tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


@dataclass(frozen=True)
class Round:
    """One timed run of one process: each wrk's (model, load), and the rows each model logged meanwhile."""

    loads: list[tuple[str, LoadResult]]
    logged: dict[str, int]
    cpu_s: float = 0.0  # the server's CPU seconds during the timed run

    @property
    def cpu_us_per_request(self) -> float:
        n = sum(x.ok for _, x in self.loads)
        return self.cpu_s / n * 1e6 if n else 0.0

    @property
    def rps(self) -> float:
        return sum(x.rps for _, x in self.loads)

    @property
    def p99_ms(self) -> float:  # the worst wrk's p99: each has its own histogram
        return max(x.p99_ms for _, x in self.loads)

    @property
    def rows_ok(self) -> bool:
        ok: dict[str, int] = {}
        for model, x in self.loads:
            ok[model] = ok.get(model, 0) + x.ok
        return all(self.logged.get(m, 0) == n for m, n in ok.items())


@dataclass
class Process:
    label: str
    url: str  # base URL
    paths: dict[str, str]  # model -> scoring path
    database_url: str
    pid: int = 0


class ManyBench:
    def __init__(self, *, tmp: Path, servers: Servers, env: dict[str, str], bodies: list[str],
                 connections: int, seconds: float, warmup: float, rounds: int,
                 count: Callable[[str], dict[str, int]], database: Callable[[str], str]) -> None:  # fmt: skip
        self.tmp, self.servers, self.env, self.bodies = tmp, servers, env, bodies
        self.connections, self.seconds, self.warmup, self.rounds = connections, seconds, warmup, rounds
        self.count, self.database = count, database

    def start(self, label: str, models: list[str], *, default_path: bool) -> Process:
        """A `driftloop serve` process for `models` (the first the default) on its own database."""
        import subprocess
        import sys

        bin_dir = Path(sys.executable).parent
        port = free_port()
        database_url = self.database(label)
        env = {
            **self.env,
            "DRIFTLOOP_DATA_DIR": str(self.tmp),
            "DRIFTLOOP_DATABASE_URL": database_url,
            "DRIFTLOOP_MODEL_NAME": models[0],
            "DRIFTLOOP_MODELS": ",".join(models[1:]),
            "DRIFTLOOP_EMBEDDED_SCHEDULER": "false",
        }
        upgrade = [str(bin_dir / "driftloop"), "db", "upgrade"]
        subprocess.run(upgrade, env=env, check=True, capture_output=True)
        argv = [str(bin_dir / "driftloop"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        proc = self.servers.start(label, argv, env)
        paths = {m: "/invocations" if default_path else f"/models/{m}/invocations" for m in models}
        return Process(label, f"http://127.0.0.1:{port}", paths, database_url, proc.pid)

    def ready(self, process: Process) -> None:
        self.servers.wait_ready(process.label, f"{process.url}/readyz")
        for model in process.paths:  # every model loaded, not only one
            self.servers.wait_ready(process.label, f"{process.url}/models/{model}/ping")

    def load(
        self, process: Process, seconds: float, connections: int | None = None, parts: int | None = None
    ) -> list[tuple[str, LoadResult]]:
        """`parts` wrk processes (default: one per model) share the connections; the i-th loads model
        i mod n. Both processes of a round get the same `parts`, so the load generator is the same and
        only the server differs."""
        models = list(process.paths)
        shares = split(connections or self.connections, parts or len(models))

        def one(i: int) -> tuple[str, LoadResult]:
            script_dir = self.tmp / f"wrk-{process.label}-{i}"
            script_dir.mkdir(exist_ok=True)
            model = models[i % len(models)]
            return model, run_wrk(process.url + process.paths[model], self.bodies, seconds=seconds,
                                  connections=shares[i], threads=1, script_dir=script_dir)  # fmt: skip

        with ThreadPoolExecutor(len(shares)) as pool:
            return list(pool.map(one, range(len(shares))))

    def timed(self, process: Process, parts: int) -> Round:
        before = self.count(process.database_url)
        cpu = cpu_seconds(process.pid)
        loads = self.load(process, self.seconds, parts=parts)
        cpu = cpu_seconds(process.pid) - cpu
        after = self.count(process.database_url)
        logged = {m: after.get(m, 0) - before.get(m, 0) for m in process.paths}
        return Round(loads, logged, cpu)

    def run(self, names: list[str], *, memory_of_five: bool = True) -> dict[str, Any]:
        one = self.start("one-model", names[:1], default_path=True)
        five = self.start("five-models", names, default_path=False)
        for process in (one, five):
            self.ready(process)
            self.load(process, self.warmup, parts=len(names))
        results: dict[str, list[Round]] = {"one": [], "five": []}
        for i in range(self.rounds):
            pair = (("one", one), ("five", five))
            for key, process in pair if i % 2 == 0 else pair[::-1]:  # neither always goes first
                print(
                    f"  round {i + 1}/{self.rounds}, {process.label}: load average {os.getloadavg()[0]:.1f}"
                )
                results[key].append(self.timed(process, len(names)))
                last = results[key][-1]
                print(
                    f"    {last.rps:,.0f} req/s, p99 {last.p99_ms:.1f} ms, "
                    f"server CPU {last.cpu_us_per_request:.0f} us/request"
                )
        rss: dict[str, float | None] = {"one": rss_mb(one.pid), "five": rss_mb(five.pid)}
        self.servers.stop(one.label)
        self.servers.stop(five.label)
        rss["five_processes"] = self.five_processes(names) if memory_of_five else None
        return {"rounds": results, "rss": rss}

    def five_processes(self, names: list[str]) -> float:
        """The memory five one-model processes take (each warmed up with its share of the load)."""
        procs = [self.start(f"alone-{i}", [name], default_path=True) for i, name in enumerate(names)]
        try:
            for process in procs:
                self.ready(process)
            shares = split(self.connections, len(procs))  # the five share the total load, as above
            with ThreadPoolExecutor(len(procs)) as pool:
                list(pool.map(lambda i: self.load(procs[i], self.warmup, shares[i]), range(len(procs))))
            return sum(rss_mb(p.pid) for p in procs)
        finally:
            for process in procs:
                self.servers.stop(process.label)


def report(
    result: dict[str, Any], connections: int, seconds: float, backend: str = "SQLite"
) -> tuple[list[str], bool]:
    """Markdown lines and whether every target is met."""
    one: list[Round] = result["rounds"]["one"]
    five: list[Round] = result["rounds"]["five"]
    rss = result["rss"]
    one_rps = statistics.median(r.rps for r in one)
    five_rps = statistics.median(r.rps for r in five)
    one_p99 = statistics.median(r.p99_ms for r in one)
    five_p99 = statistics.median(r.p99_ms for r in five)
    one_cpu = statistics.median(r.cpu_us_per_request for r in one)
    five_cpu = statistics.median(r.cpu_us_per_request for r in five)
    ratio = five_rps / one_rps if one_rps else 0.0
    # each round's two runs are seconds apart: their ratio cancels the shared machine's slow swings,
    # which move both medians by 20-30 points (the one-model comparison with mlflow is judged the same way)
    paired = statistics.median([b.rps / a.rps for a, b in zip(one, five, strict=True) if a.rps] or [0.0])
    mem = rss["five"] / rss["one"] if rss["one"] else 0.0
    rows_ok = all(r.rows_ok for r in one + five)
    per_round = ", ".join(
        f"{a.rps:,.0f} / {b.rps:,.0f} ({b.rps / a.rps:.0%})" if a.rps else "-"
        for a, b in zip(one, five, strict=True)
    )
    five_mem = rss["five_processes"]
    checks = {
        f"total req/s {paired:.0%} of one model's, median of the rounds' ratios (ratio of the medians "
        f"{ratio:.0%}; target >= 90%)": paired >= 0.9,
        f"p99 {five_p99:.1f} ms, worst model, median of rounds (target <= 50 ms)": five_p99 <= 50,
        "logged rows == 2xx for every model in every round": rows_ok,
        "every round of both processes answered requests": all(r.rps > 0 for r in one + five),
        f"RSS {rss['five']:.0f} MiB = {mem:.2f}x one model's {rss['one']:.0f} MiB (target <= 1.5x)": mem
        <= 1.5,
    }
    lines = [
        f"{connections} connections in total over five wrk processes in both (five models: one wrk each), "
        f"single-row dataframe_records, {len(one)} alternating rounds of {seconds:.0f} s, medians; {backend}",
        "",
        f"Rounds, one model / five models req/s (five as a share of one): {per_round}.",
        "",
        "| process | req/s | p99 ms | server CPU us/request | RSS MiB |",
        "|---|---:|---:|---:|---:|",
        f"| one model (`/invocations`) | {one_rps:,.0f} | {one_p99:.1f} | {one_cpu:.0f} | {rss['one']:.0f} |",
        f"| five models, one process (`/models/{{name}}/invocations`) | {five_rps:,.0f} | {five_p99:.1f} | "
        f"{five_cpu:.0f} | {rss['five']:.0f} |",
        f"| five one-model processes (memory only) | | | | "
        f"{'not measured on ' + backend if five_mem is None else f'{five_mem:.0f}'} |",
        "",
        "| model (five-model process, last round) | req/s | p50 ms | p99 ms | 2xx | logged |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    last = five[-1]
    for model, x in last.loads:
        lines.append(
            f"| {model} | {x.rps:,.0f} | {x.p50_ms:.2f} | {x.p99_ms:.1f} | {x.ok} "
            f"| {last.logged.get(model, 0)} |"
        )
    lines.append("")
    lines += [f"- {text}: {'PASS' if ok else 'FAIL'}" for text, ok in checks.items()]
    return lines, all(checks.values())


def count_by_model(url: str) -> dict[str, int]:
    """Rows in driftloop's `predictions` table per model (read directly, not through the service)."""
    import sqlalchemy as sa

    from service.db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT model_name, count(*) FROM predictions GROUP BY model_name"))
            return {str(name): int(n) for name, n in rows}
    finally:
        engine.dispose()


RESULTS = Path(__file__).with_name("RESULTS.md")
HEADING = "## Many models, one process (`make bench-serve`, alone: `python -m bench.serve --only many`)"
HEADING_PG = "## Many models, one process, PostgreSQL (`python -m bench.serve --only many-postgres`)"
_REGISTERED: dict[str, list[str]] = {}  # tracking URI -> the five registered names


def run_many(
    *, tmp: Path, servers: Servers, env: dict[str, str], bodies: list[str], connections: int, seconds: float,
    warmup: float, rounds: int, write: bool = True, postgres: bool = False,
) -> bool:  # fmt: skip
    """Register the five, run the comparison, print it and (with `write`) put it in bench/RESULTS.md.

    On PostgreSQL each process gets a scratch database (dropped afterwards) and the memory of five
    one-model processes is not measured again (it does not depend on the database)."""
    from bench._fixtures import create_pg_database, drop_pg_database

    uri = env["MLFLOW_TRACKING_URI"]
    if uri not in _REGISTERED:
        print("five models: registering the five pipelines ...")
        _REGISTERED[uri] = register_five(uri, tmp / "mlartifacts", "bench-many")
    names = _REGISTERED[uri]
    backend = "PostgreSQL" if postgres else "SQLite"
    created: list[str] = []

    def database(label: str) -> str:
        if not postgres:
            return f"sqlite:///{tmp / f'{label}.db'}"
        created.append(create_pg_database())
        return created[-1]

    started = datetime.now(UTC)
    load_before = os.getloadavg()[0]
    bench = ManyBench(tmp=tmp, servers=servers, env=env, bodies=bodies, connections=connections,
                      seconds=seconds, warmup=warmup, rounds=rounds, count=count_by_model,
                      database=database)  # fmt: skip
    print(f"five models vs one on {backend} ...")
    try:
        result = bench.run(names, memory_of_five=not postgres)
    finally:
        for url in created:
            drop_pg_database(url)
    lines, ok = report(result, connections, seconds, backend)
    load_after = os.getloadavg()[0]
    title = (
        f"### {started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average {load_before:.1f} before, "
        f"{load_after:.1f} after; pipelines: {', '.join(PIPELINES)}"
    )
    print("\n".join([title, "", *lines]))
    if write:
        heading = HEADING if not postgres else HEADING_PG
        write_section(RESULTS, "\n".join([heading, "", title, "", *lines]))
        print(f"written to {RESULTS}")
    return ok
