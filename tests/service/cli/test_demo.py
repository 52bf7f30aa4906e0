"""`driftloop demo` as a user runs it: a subprocess in an empty folder, its whole story in the output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench._procs import free_port
from service.cli.demo import MARKER, DemoOptions, prepare_dir, service_env

BIN = Path(sys.executable).parent


def run_demo(cwd: Path, *args: str) -> tuple[int, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "driftloop"), "demo", "--exit-when-done", "--port", str(free_port()), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def assert_story(code: int, out: str) -> None:
    assert code == 0, out
    # the chapters, in the terminal: a check that found drift, an episode, a signed webhook, the retrain,
    # the promotion, version 2 answering, and the links
    assert re.search(r"check\s+#\d+ drift .*DRIFT", out), out
    assert re.search(r"episode\s+#\d+ \w+ breach episode OPENED", out), out
    assert re.search(r"webhook\s+<- drift\.detected .*signature ok", out), out
    assert re.search(r"webhook\s+<- model\.promoted .*signature ok", out), out
    assert re.search(r"retrain\s+job #\d+ succeeded: .*-> version 2", out), out
    assert re.search(r"promote\s+alias 'champion' -> version 2", out), out
    assert "now answered by version 2" in out, out
    assert re.search(r"dashboard\s+http://127\.0\.0\.1:\d+/\n", out), out
    assert re.search(r"drift report\s+http://127\.0\.0\.1:\d+/v1/drift/runs/\d+/report\.html", out), out
    assert "Traceback" not in out, out


def test_demo_tells_the_whole_loop_fast(tmp_path: Path) -> None:
    code, out, seconds = run_demo(tmp_path, "--rows", "1500")
    print(f"demo --rows 1500: {seconds:.1f} s")
    assert_story(code, out)
    # the default data folder, inside the folder it was started from, holds the embedded stores
    assert {"driftloop.db", "mlflow.db", MARKER} <= {p.name for p in (tmp_path / "data" / "demo").iterdir()}


@pytest.mark.slow
def test_demo_default_story_under_three_minutes(tmp_path: Path) -> None:
    code, out, seconds = run_demo(tmp_path, "--data-dir", str(tmp_path / "d"))
    print(f"demo (defaults): {seconds:.1f} s")
    assert_story(code, out)
    assert seconds < 180


def test_prepare_dir_wipes_only_demo_folders(tmp_path: Path) -> None:
    mine = tmp_path / "demo"
    prepare_dir(mine, keep=False)
    (mine / "old.db").write_text("x")
    prepare_dir(mine, keep=True)
    assert (mine / "old.db").exists()
    prepare_dir(mine, keep=False)
    assert not (mine / "old.db").exists() and (mine / MARKER).exists()

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("x")
    with pytest.raises(SystemExit, match="not a demo folder"):
        prepare_dir(precious, keep=False)
    assert (precious / "keep.txt").exists()


def test_service_env_ignores_configured_production_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_DATABASE_URL", "postgresql://prod/db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://prod-mlflow:5000")
    monkeypatch.setenv("DRIFTLOOP_WEBHOOK_ALLOWED_HOSTS", "hooks.example.com")
    env = service_env(DemoOptions(data_dir=tmp_path, port=8123), "token")
    assert "DRIFTLOOP_DATABASE_URL" not in env and "MLFLOW_TRACKING_URI" not in env
    assert "DRIFTLOOP_WEBHOOK_ALLOWED_HOSTS" not in env
    assert env["DRIFTLOOP_DATA_DIR"] == str(tmp_path.resolve())
    assert env["DRIFTLOOP_PUBLIC_URL"] == "http://127.0.0.1:8123"
    assert env["DRIFTLOOP_EMBEDDED_SCHEDULER"] == "true"
