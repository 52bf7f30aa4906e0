from __future__ import annotations

import pytest

from tests.support.promotion import server, template

__all__ = ["server", "template"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow])])
def database_url_slow_pg(request: pytest.FixtureRequest) -> str:
    """SQLite in the normal suite, PostgreSQL too in `make test-slow` (for the longer job runs)."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_database"
    url: str = request.getfixturevalue(name)
    return url
