"""A registered champion shared by the tests that run `driftloop serve` as a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._fixtures import register_champion
from bench.load import MODEL


@pytest.fixture(scope="session")
def champion_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Tracking URI of an MLflow store whose `champion` is the demo model (registered once; read-only))."""
    root = tmp_path_factory.mktemp("champion")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    register_champion(uri, root / "mlartifacts", MODEL)
    return uri


def pg_or_sqlite(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'driftloop.db'}"
    return str(request.getfixturevalue("pg_database"))
