"""PostgreSQL "stopped" for 10 s under load: clear 503s during it, recovery without restart, nothing lost.

The shared server keeps running; a loopback proxy in front of it drops and refuses every connection instead.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.load import Serve, load, logged_ids
from tests.support.proxy import Proxy
from tests.support.serve import champion_store

__all__ = ["champion_store"]

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(
    "outage", [pytest.param(10.0, marks=pytest.mark.slow, id="10s"), pytest.param(3.0, id="3s-fast")]
)
def test_database_outage_gives_503s_then_recovers(
    tmp_path: Path, pg_database: str, champion_store: str, outage: float
) -> None:
    proxy = Proxy(5432)
    proxied = pg_database.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    assert proxied != pg_database
    serve = Serve.prepare(tmp_path, pg_database, champion_store, DRIFTLOOP_DATABASE_URL=proxied)
    try:
        serve.start()
        with load(serve.port, clients=32) as stats:
            time.sleep(2)
            down_at = time.monotonic()
            proxy.down()
            time.sleep(outage)
            up_at = time.monotonic()
            proxy.up()
            time.sleep(4)
    finally:
        serve.servers.stop_all()
        proxy.close()
    # requests started well inside the outage (a request started just before `up()` may commit after it)
    during = [(t, s) for t, s in stats.timeline if down_at + 0.5 <= t < up_at - 0.5]
    after_ok = sorted(t for t, s in stats.timeline if t >= up_at and 200 <= s < 300)
    recovery = after_ok[0] - up_at if after_ok else float("inf")
    n503 = sum(s == 503 for _, s in during)
    missing = set(stats.ids) - logged_ids(pg_database, stats.ids)
    slowest = max(stats.latencies, default=float("inf"))
    print(
        f"db outage {outage:.0f}s: statuses={dict(stats.statuses)} conn_errors={dict(stats.errors)} "
        f"503_during={n503} "
        f"recovery={recovery:.2f}s slowest={slowest:.2f}s answered={stats.ok} missing={len(missing)}"
    )
    assert 500 not in stats.statuses and not stats.errors, serve.log()[-3000:]
    assert set(stats.statuses) <= {200, 503}
    assert n503 > 0 and all(s == 503 for _, s in during), "requests during the outage get 503"
    assert recovery < 5, "serving recovers without a restart"
    assert slowest < 12, "no request hangs beyond the connect timeout"
    assert not missing
