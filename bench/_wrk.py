"""The load generator: wrk with a Lua script (single-row POST bodies, exact 2xx count, latency histogram).

Why wrk and not a Python client: on 2 cores the client shares the CPU with the server under test; wrk (C,
epoll, LuaJIT) needs a few percent of one core for thousands of req/s, where an asyncio client would need a
large share of a core and depress exactly the numbers we measure.

Exact counting: requests are only *sent* during the first `send_seconds` (after that `delay()` parks every
connection), and wrk runs `tail_seconds` longer, so every request in flight completes and is counted before
wrk stops. Without this, wrk abandons up to one in-flight request per connection at the end: the server
still logs it, and logged rows would exceed the 2xx count.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } bench_timeval;
int gettimeofday(bench_timeval *tv, void *tz);
]]
local tv = ffi.new("bench_timeval")
local function now()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) + tonumber(tv.tv_usec) / 1e6
end

local bodies = {
%(bodies)s
}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, other, i = 0, 0, 0
  deadline = now() + %(send_seconds)f
  reqs = {}
  for k, body in ipairs(bodies) do
    reqs[k] = wrk.format("POST", "%(path)s", {["Content-Type"] = "application/json"}, body)
  end
end

function delay()
  if now() >= deadline then return 3600000 end
  return 0
end

function request()
  i = i %% #reqs + 1
  return reqs[i]
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local ok_total, other_total = 0, 0
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    other_total = other_total + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"ok": %%d, "other": %%d, "completed": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, '
    .. '"max_us": %%d, "mean_us": %%.1f, "connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}\n',
    ok_total, other_total, summary.requests, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass(frozen=True)
class LoadResult:
    ok: int  # 2xx responses, counted exactly
    other: int  # non-2xx responses
    socket_errors: int
    send_seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    client_cpu: float  # wrk's CPU seconds / wall seconds (1.0 = one full core)

    @property
    def rps(self) -> float:
        return self.ok / self.send_seconds


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(
            "bench-serve needs the load generator `wrk` (Debian/Ubuntu: `apt-get install -y wrk`, "
            "macOS: `brew install wrk`); install it and run again"
        )
    return path


def _lua_string(body: str) -> str:
    assert "]==]" not in body
    return f"  [==[{body}]==],"


def run_wrk(
    url: str,
    bodies: list[str],
    *,
    seconds: float,
    connections: int,
    threads: int,
    script_dir: Path,
    tail_seconds: float = 3.0,
) -> LoadResult:
    """POST `bodies` round-robin to `url` (base URL + path) for `seconds` with `connections` connections."""
    base, _, path = url.partition("://")[2].partition("/")
    script = script_dir / "load.lua"
    script.write_text(
        _LUA
        % {
            "bodies": "\n".join(_lua_string(b) for b in bodies),
            "send_seconds": seconds,
            "path": "/" + path,
        }
    )
    argv = [
        require_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{int(seconds + tail_seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url.split("://")[0] + "://" + base,
    ]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        output = proc.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:  # Ctrl-C: wrk must not outlive the benchmark
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    line = next((ln for ln in output.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}):\n{output}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return LoadResult(
        ok=data["ok"],
        other=data["other"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        send_seconds=seconds,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        client_cpu=(usage.ru_utime + usage.ru_stime) / min(wall, seconds),
    )
