"""Retention against serving side by side in one run: one steady load, cut into segments that alternate
without retention (A) and with it (B): A B A B ... B A. Retention runs in one long-lived process, one
time-boxed slice (`retention_max_seconds`) per B segment, continuing where the last slice stopped, so a
drift of the machine's load over the run hits A and B alike; each segment's p99 comes from the requests
started in it, and A is compared with B by the medians of their segments' p99 (and, per B, against the
mean of the A segments on either side)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import numpy as np

from bench.load import MODEL, LoadStats, Serve, load


def worker_body(url: str, days: int, labeled_days: int) -> None:
    """The retention process: a slice of at most N seconds for each line N on stdin, its report as one
    `REPORT {json}` line on stdout."""
    import sqlalchemy as sa

    from service.config import Settings
    from service.db.engine import make_engine
    from service.lifecycle.retention import run_retention

    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    print("READY", flush=True)
    for line in sys.stdin:
        # retention's own pacing (batch rows, pauses, rest ratio) at the defaults a user gets; the
        # DRIFTLOOP_RETENTION_* variables of the environment, if set, override them as in a deployment
        settings = Settings(
            database_url=url, window_kind="time", retention_days=days, labeled_retention_days=labeled_days,
            retention_max_seconds=float(line),
        )  # fmt: skip
        started = time.perf_counter()
        report = run_retention(engine, settings, models=[MODEL])
        figures = {
            "deleted": report.deleted, "batches": report.batches, "days_dropped": len(report.days_dropped),
            "days_replaced": len(report.days_replaced), "days_deferred": len(report.days_deferred),
            "seconds": time.perf_counter() - started, "finished": report.finished,
            "worked_s": report.worked_s,
        }  # fmt: skip
        print("REPORT " + json.dumps(figures), flush=True)


@dataclass
class Segment:
    kind: str  # A: load alone, B: load + a retention slice
    start: float
    end: float
    report: dict[str, Any] = field(default_factory=dict)


def _reply(worker: subprocess.Popen[str], prefix: str) -> str:
    assert worker.stdout is not None
    for line in worker.stdout:
        if line.startswith(prefix):
            return line[len(prefix) :]
    raise RuntimeError(f"the retention process ended (exit {worker.wait()})")


def interleaved(
    serve: Serve, clients: int, segment_s: float, argv: list[str], max_b: int
) -> tuple[list[Segment], LoadStats]:
    """A, then B and A in turn until retention has finished (or `max_b` slices), under one load."""
    worker = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=serve.env)
    assert worker.stdin is not None
    _reply(worker, "READY")
    segments: list[Segment] = []
    try:
        with load(serve.port, clients) as stats:
            time.sleep(5)  # the load reaches its steady state first
            while True:
                t0 = time.monotonic()
                time.sleep(segment_s)
                segments.append(Segment("A", t0, time.monotonic()))
                slices = [s for s in segments if s.kind == "B"]
                if (slices and slices[-1].report["finished"]) or len(slices) >= max_b:
                    break
                t0 = time.monotonic()
                worker.stdin.write(f"{segment_s}\n")
                worker.stdin.flush()
                report = json.loads(_reply(worker, "REPORT "))
                segments.append(Segment("B", t0, time.monotonic(), report))
    finally:
        worker.stdin.close()
        worker.wait(timeout=60)
    return segments, stats


def segment_figures(stats: LoadStats, segments: list[Segment]) -> list[dict[str, Any]]:
    """Per segment: the requests started in it, their p50/p99, 5xx and connection errors."""
    with stats.lock:
        timeline, latencies = list(stats.timeline), np.array(stats.latencies) * 1000
    started = np.array([t for t, _ in timeline])
    status = np.array([s for _, s in timeline])
    answered = status != -1  # a latency was recorded for exactly these, in the same order
    answered_at, answered_status = started[answered], status[answered]
    out = []
    for seg in segments:
        inside = (answered_at >= seg.start) & (answered_at < seg.end)
        lat = latencies[inside]
        errors = int(np.sum((started >= seg.start) & (started < seg.end) & ~answered))
        out.append(
            {
                "kind": seg.kind, "seconds": seg.end - seg.start, "requests": int(inside.sum()),
                "p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                "p99_ms": float(np.percentile(lat, 99)) if lat.size else float("nan"),
                "server_errors": int(np.sum(answered_status[inside] >= 500)), "conn_errors": errors,
                "deleted": seg.report.get("deleted", 0),
            }
        )  # fmt: skip
    return out


def summarize(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of A's and B's segment p99, their ratio, the paired ratios, errors and deletion rate."""
    a = [f["p99_ms"] for f in figures if f["kind"] == "A"]
    b = [f["p99_ms"] for f in figures if f["kind"] == "B"]
    paired = [
        f["p99_ms"] / ((figures[i - 1]["p99_ms"] + figures[i + 1]["p99_ms"]) / 2)
        for i, f in enumerate(figures)
        if f["kind"] == "B" and 0 < i < len(figures) - 1
    ]
    b_seconds = sum(f["seconds"] for f in figures if f["kind"] == "B")
    deleted = sum(f["deleted"] for f in figures)
    errors = sum(f["server_errors"] + f["conn_errors"] for f in figures)
    out = {
        "segments": len(figures), "a_p99_median_ms": median(a), "b_p99_median_ms": median(b) if b else None,
        "ratio": median(b) / median(a) if b else None,
        "paired_ratio_median": median(paired) if paired else None,
        "errors": errors, "errors_during_b": sum(
            f["server_errors"] + f["conn_errors"] for f in figures if f["kind"] == "B"
        ),
        "deleted": deleted, "deleted_rows_s": deleted / b_seconds if b_seconds else 0.0,
        "a_p50_median_ms": median(f["p50_ms"] for f in figures if f["kind"] == "A"),
        "b_p50_median_ms": median(f["p50_ms"] for f in figures if f["kind"] == "B") if b else None,
    }  # fmt: skip
    return out


def report_lines(figures: list[dict[str, Any]], out: dict[str, Any]) -> None:
    for f in figures:
        print(
            f"  {f['kind']} {f['seconds']:5.1f} s {f['requests']:6d} req p50 {f['p50_ms']:6.1f} ms "
            f"p99 {f['p99_ms']:6.1f} ms errors {f['server_errors'] + f['conn_errors']} "
            f"deleted {f['deleted']:,}"
        )
    if out["ratio"] is None:
        print("retention finished before a B segment: nothing to compare")
        return
    print(
        f"retention alongside the load, {out['segments']} segments (A B ... A): p99 median A "
        f"{out['a_p99_median_ms']:.1f} ms, B {out['b_p99_median_ms']:.1f} ms, B / A = {out['ratio']:.2f} "
        f"(each B against its neighbouring A's: median {out['paired_ratio_median'] or float('nan'):.2f}; "
        f"target <= 1.10), p50 A {out['a_p50_median_ms']:.1f} ms B {out['b_p50_median_ms']:.1f} ms, "
        f"errors {out['errors']} (during B {out['errors_during_b']}), "
        f"{out['deleted']:,} rows deleted at {out['deleted_rows_s']:,.0f} rows/s of B time"
    )
