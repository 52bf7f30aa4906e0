"""`kill -9` of `driftloop serve` under load: every prediction answered 2xx is in the database afterwards."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from bench.load import Serve, load, logged_ids
from tests.support.serve import champion_store, pg_or_sqlite

__all__ = ["champion_store"]


def _crash_and_restart(url: str, root: Path, tracking_uri: str, kills: int, seconds: float) -> None:
    serve = Serve.prepare(root, url, tracking_uri)
    answered: list[str] = []
    try:
        for _ in range(kills):
            serve.start()
            with load(serve.port, clients=32) as stats:
                time.sleep(seconds)
                proc = serve.servers._procs["serve"]
                proc.send_signal(signal.SIGKILL)  # the uvicorn process itself, mid-load
                proc.wait(timeout=10)
            serve.servers.stop_all()
            assert stats.ok > 50 and stats.server_errors == 0, (stats.statuses, serve.log()[-2000:])
            answered += stats.ids
        serve.start()  # restart: the database opens (SQLite WAL recovery) and serving resumes
        with load(serve.port, clients=4) as after:
            time.sleep(0.5)
        assert after.ok > 0 and after.server_errors == 0
    finally:
        serve.servers.stop_all()
    missing = set(answered) - logged_ids(url, answered)
    print(f"crash: kills={kills} answered={len(answered)} missing_after_restart={len(missing)}")
    assert not missing


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_answered_predictions_survive_kill_9(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, champion_store: str
) -> None:
    _crash_and_restart(pg_or_sqlite(kind, tmp_path, request), tmp_path, champion_store, kills=1, seconds=2)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_answered_predictions_survive_repeated_kill_9(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, champion_store: str
) -> None:
    _crash_and_restart(pg_or_sqlite(kind, tmp_path, request), tmp_path, champion_store, kills=5, seconds=5)
