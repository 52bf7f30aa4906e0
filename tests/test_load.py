"""Load (fast variant of `make bench-load`): 32 clients for 10 s, zero 5xx, logged rows == 2xx exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import Serve, load, logged_ids, report
from tests.support.serve import champion_store, pg_or_sqlite

__all__ = ["champion_store"]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_32_clients_for_10_s(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, champion_store: str
) -> None:
    import time

    url = pg_or_sqlite(kind, tmp_path, request)
    serve = Serve.prepare(tmp_path, url, champion_store)
    before = logged_ids(url) if kind == "postgres" else set()  # the session's PostgreSQL DB is shared
    try:
        serve.start()
        with load(serve.port, clients=32) as stats:
            time.sleep(10)
    finally:
        serve.servers.stop_all()
    rows = logged_ids(url) - before
    missing = len(set(stats.ids) - rows)
    assert report(kind, stats, len(rows), missing, 10), serve.log()[-2000:]
    assert stats.ok > 500
