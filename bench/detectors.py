"""Benchmark: driftloop's full check against Evidently 0.7 DataDriftPreset, wall time and peak memory.

Run with ``make bench-detectors`` (``python -m bench.detectors``). Every measurement runs in a fresh
subprocess; peak memory is that process's ``ru_maxrss``. In-process: driftloop's reference profile is fitted
in a separate subprocess first (as the service does when a model is registered), so the measured process
holds the current window, the profile and the check; Evidently's holds both frames, as its API requires.
Whole command: what a user runs, ``driftloop check ref.parquet cur.parquet`` against a script that reads
the same two Parquet files and runs ``DataDriftPreset``, each a process timed from start to exit (imports,
reading, fitting the profile included) with its peak RSS, by ``/usr/bin/time`` where it exists and
otherwise by ``getrusage(RUSAGE_CHILDREN)`` in a fresh parent per command.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CITIES = np.array([f"c{i}" for i in range(12)], dtype=object)


def make_frame(rows: int, n_features: int, n_categorical: int, seed: int, drift: bool) -> pd.DataFrame:
    """``n_features`` columns, the last ``n_categorical`` categorical; with ``drift`` 2 numeric ones move."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for i in range(n_features - n_categorical):
        shift = 0.3 if drift and i < 2 else 0.0
        cols[f"num{i}"] = rng.normal(shift, 1.0 + i / 10, rows)
    for i in range(n_categorical):
        p = np.linspace(1, 2, CITIES.size)
        if drift and i == 0:
            p = p[::-1]
        cols[f"cat{i}"] = CITIES[rng.choice(CITIES.size, rows, p=p / p.sum())]
    return pd.DataFrame(cols)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    rows, nf, nc = spec["rows"], spec["features"], spec["categorical"]
    if spec["task"] == "fit":
        from detectors.profile import ReferenceProfile

        ref = make_frame(rows, nf, nc, seed=1, drift=False)
        start = time.perf_counter()
        profile = ReferenceProfile.fit(ref)
        fit_s = time.perf_counter() - start
        Path(spec["profile"]).write_text(profile.to_json())
        return {"fit_s": fit_s, "profile_kb": Path(spec["profile"]).stat().st_size / 1024}
    cur = make_frame(rows, nf, nc, seed=2, drift=True)
    if spec["task"] == "driftloop":
        from detectors.check import CheckOptions, run_check
        from detectors.profile import ReferenceProfile

        profile = ReferenceProfile.from_json(Path(spec["profile"]).read_text())
        baseline = _rss_mb()
        # best of `repeat`: this machine is shared, and a minimum is the least noisy estimate
        wall, result = _best(spec["repeat"], lambda: run_check(profile, cur))
        drifted = list(result.drifted_features)
        fast, _ = _best(
            spec["repeat"], lambda: run_check(profile, cur, options=CheckOptions(multivariate=False))
        )
        extra = {"no_classifier_s": fast}
    else:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        ref = make_frame(rows, nf, nc, seed=1, drift=False)
        baseline = _rss_mb()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snapshot = Report([DataDriftPreset()]).run(cur, ref)
        wall = time.perf_counter() - start
        drifted = [m["config"]["column"] for m in snapshot.dict()["metrics"] if _ev_drift(m)]
        extra = {}
    peak = _peak_mb()
    return {"wall_s": wall, "peak_mb": peak, "baseline_mb": baseline, "drifted": sorted(drifted), **extra}


def _best(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def evidently_files(reference: str, current: str) -> int:
    """The whole-command Evidently script: read both files, run the preset, return the drifted count."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = pd.read_parquet(reference), pd.read_parquet(current)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset()]).run(cur, ref)
    return sum(_ev_drift(m) for m in snapshot.dict()["metrics"])


def timed(cmd: list[str]) -> dict[str, Any]:
    """Wall time and peak RSS of ``cmd`` as its own process."""
    if Path("/usr/bin/time").exists():
        proc = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", *cmd], capture_output=True, text=True)
        wall, user, system, kb = proc.stderr.strip().splitlines()[-1].split()
        out = {"wall_s": float(wall), "cpu_s": float(user) + float(system), "peak_mb": int(kb) / 1024}
    else:  # a fresh parent per command: RUSAGE_CHILDREN's peak is then this command's alone
        proc = subprocess.run(
            [sys.executable, "-m", "bench.detectors", "--rusage", json.dumps(cmd)],
            capture_output=True,
            text=True,
        )
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    return out


def _rusage(cmd: list[str]) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=False)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, "peak_mb": usage.ru_maxrss / 1024, "returncode": proc.returncode}


def whole_command(rows: int, features: int, tmp: Path, repeat: int, evidently: bool) -> None:
    """``driftloop check`` (``repeat`` runs, median) and the Evidently script (one run: ~2 minutes) on the
    same two Parquet files, each its own process."""
    ref, cur = tmp / "ref.parquet", tmp / "cur.parquet"
    make_frame(rows, features, 0, seed=1, drift=False).to_parquet(ref)
    make_frame(rows, features, 0, seed=2, drift=True).to_parquet(cur)
    driftloop_bin = shutil.which("driftloop", path=str(Path(sys.executable).parent)) or "driftloop"
    runs = [timed([driftloop_bin, "check", str(ref), str(cur)]) for _ in range(repeat)]
    for r in runs:
        print(f"  driftloop run: {r['wall_s']:.2f} s (cpu {r['cpu_s']:.2f} s), {r['peak_mb']:.0f} MB")
    ours = {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "cpu_s", "peak_mb")}
    results = [("driftloop", ours)]
    if evidently:
        theirs = timed([sys.executable, "-m", "bench.detectors", "--evidently-files", str(ref), str(cur)])
        results.append(("evidently", theirs))
    for tool, r in results:
        print(
            f"whole command {tool:<10} {rows:>9,} x {features}  {r['wall_s']:8.2f} s"
            f" (cpu {r['cpu_s']:.2f} s)  peak {r['peak_mb']:7.0f} MB"
            + (f"  (median of {repeat})" if tool == "driftloop" else ""),
            flush=True,
        )
    if evidently:
        print(
            f"whole command at {rows:,} x {features}: "
            f"driftloop {theirs['wall_s'] / ours['wall_s']:.0f}x faster "
            f"({theirs['cpu_s'] / ours['cpu_s']:.0f}x less cpu), "
            f"peak memory {ours['peak_mb'] / theirs['peak_mb']:.2f} of Evidently's",
            flush=True,
        )


def _ev_drift(metric: dict[str, Any]) -> bool:
    config = metric["config"]
    if not config["type"].endswith("ValueDrift"):
        return False
    value, threshold = float(metric["value"]), float(config["threshold"])
    return value < threshold if "p_value" in config["method"] else value >= threshold


def run(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.detectors", "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def driftloop(rows: int, features: int, categorical: int, tmp: Path, repeat: int) -> dict[str, Any]:
    profile = tmp / f"profile-{rows}-{categorical}.json"
    base = {"rows": rows, "features": features, "categorical": categorical, "profile": str(profile)}
    base["repeat"] = repeat
    fit = run({**base, "task": "fit"})
    return {**fit, **run({**base, "task": "driftloop"})}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rusage", help=argparse.SUPPRESS)
    parser.add_argument("--evidently-files", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--whole-rows", type=int, default=1_000_000, help="whole-command case; 0 skips it")
    parser.add_argument("--whole-repeat", type=int, default=5, help="driftloop whole-command runs (median)")
    parser.add_argument("--whole-evidently", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--in-process", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--rows", default="10000,100000,1000000", help="driftloop window sizes")
    parser.add_argument("--evidently-rows", type=int, default=1_000_000, help="0 skips Evidently")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="driftloop checks per size (best is shown)")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.rusage:
        print(json.dumps(_rusage(json.loads(args.rusage))))
        return
    if args.evidently_files:
        print(evidently_files(*args.evidently_files))
        return
    rows_list = [int(r) for r in args.rows.split(",")] if args.in_process else []
    table: list[tuple[str, str, int, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.whole_rows:
            whole_command(args.whole_rows, args.features, Path(tmp), args.whole_repeat, args.whole_evidently)
        for categorical in (0, 5) if args.in_process else ():
            variant = f"{args.features - categorical} num + {categorical} cat"
            for rows in rows_list:
                res = driftloop(rows, args.features, categorical, Path(tmp), args.repeat)
                table.append(("driftloop", variant, rows, res))
                _print_row(table[-1])
            if args.evidently_rows:
                table.append(("evidently", variant, args.evidently_rows, _evidently(args, categorical)))
                _print_row(table[-1])
    _ratios(table, args.evidently_rows)


def _evidently(args: argparse.Namespace, categorical: int) -> dict[str, Any]:
    spec = {"rows": args.evidently_rows, "features": args.features, "categorical": categorical}
    return run({**spec, "task": "evidently"})


def _print_row(row: tuple[str, str, int, dict[str, Any]]) -> None:
    tool, variant, rows, r = row
    extra = ""
    if "fit_s" in r:
        extra = f"  without classifier {r['no_classifier_s']:.3f} s; fit {r['fit_s']:.2f} s"
    print(
        f"{tool:<10} {variant:<16} {rows:>9,} rows  check {r['wall_s']:8.3f} s  peak {r['peak_mb']:7.0f} MB"
        f"  (data loaded {r['baseline_mb']:6.0f} MB)  drifted {len(r['drifted'])}{extra}",
        flush=True,
    )


def _ratios(table: list[tuple[str, str, int, dict[str, Any]]], ev_rows: int) -> None:
    for variant in sorted({v for _, v, _, _ in table}):
        ours = [r for t, v, n, r in table if t == "driftloop" and v == variant and n == ev_rows]
        theirs = [r for t, v, n, r in table if t == "evidently" and v == variant and n == ev_rows]
        if ours and theirs:
            o, e = ours[0], theirs[0]
            print(
                f"{variant} at {ev_rows:,} rows: driftloop {e['wall_s'] / o['wall_s']:.0f}x faster, "
                f"peak memory {o['peak_mb'] / e['peak_mb']:.2f} of Evidently's "
                f"({o['peak_mb']:.0f} vs {e['peak_mb']:.0f} MB)"
            )


if __name__ == "__main__":
    main()
