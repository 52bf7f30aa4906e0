"""Child servers of a benchmark: started in their own process group, always stopped at exit."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (uvicorn workers, the uvicorn that `mlflow models serve` starts)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid`'s process tree so far, from /proc. CPU per request is the figure a
    loaded machine distorts least: req/s falls with the CPU share a server gets, its CPU cost does not."""
    ticks = 0
    for current in process_tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Servers:
    """Starts servers (each a new session, so uvicorn workers die with their parent) and stops them all."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        log = (self._log_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            list(argv), env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._procs[name] = proc
        return proc

    def pid(self, name: str) -> int:
        return self._procs[name].pid

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self._log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def wait_ready(self, name: str, url: str, timeout: float = 180.0) -> None:
        """Poll `url` until it answers 200; fail early (with the log tail) if the server died."""
        proc = self._procs[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{name} not ready at {url} after {timeout:.0f} s:\n{self.log_tail(name)}")

    def stop(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=5)
        # Workers left in the group (the parent may exit first) get the same fate.
        _signal_group(proc, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self._procs):
            self.stop(name)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the group we created with start_new_session
