"""`driftloop serve --host/--port` tells the app where it listens: webhooks may never target it (issue 14)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.cli.main import app
from service.config import get_settings


def test_serve_exports_its_listening_address(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    from service.alerts.dispatcher import policy_of
    from service.db.engine import upgrade

    url = f"sqlite:///{tmp_path / 'd.db'}"
    upgrade(url)
    seen: dict[str, Any] = {}
    monkeypatch.setenv("DRIFTLOOP_DATABASE_URL", url)
    monkeypatch.setenv("DRIFTLOOP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DRIFTLOOP_HOST", raising=False)
    monkeypatch.delenv("DRIFTLOOP_PORT", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setattr("service.cli.main._check_metric_setting", lambda: None, raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "8123"])
        assert result.exit_code == 0, result.output
        assert (seen["host"], seen["port"]) == ("0.0.0.0", 8123)
        assert ("0.0.0.0", 8123) in policy_of(get_settings()).own
    finally:  # serve set them in os.environ itself
        os.environ.pop("DRIFTLOOP_HOST", None)
        os.environ.pop("DRIFTLOOP_PORT", None)
        get_settings.cache_clear()


@pytest.mark.parametrize(("args", "port"), [([], "8000"), (["PORT=9123"], "9123")])
def test_make_run_serves_on_the_port_it_is_given(args: list[str], port: str) -> None:
    """`make run` passes PORT to `driftloop serve --port` (the test above: --port reaches uvicorn)."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[3]
    make = shutil.which("make")
    assert make is not None, "make is missing"
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "MAKEFLAGS")}
    out = subprocess.run([make, "-n", "-C", str(root), "run", *args], capture_output=True, text=True,
                         env=env, check=True).stdout  # fmt: skip
    serve = [line for line in out.splitlines() if "driftloop serve" in line]
    assert len(serve) == 1, out
    assert serve[0].split()[-2:] == ["--port", port]
