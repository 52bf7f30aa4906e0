"""Shared fixtures: migrated databases (SQLite and the real PostgreSQL) and an in-process demo model."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from retrain.registry import Registry
from service.db.engine import upgrade
from tests.support.core import FakeRegistry, train_demo_estimator
from tests.support.mlflow_server import MlflowServer

PG_ADMIN_URL = os.environ.get("DRIFTLOOP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _create_pg_database() -> str:
    name = f"driftloop_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh migrated PostgreSQL database for this test session; dropped at the end."""
    if not _pg_available():
        if os.environ.get("DRIFTLOOP_REQUIRE_PG", "") not in ("", "0"):
            pytest.fail(
                f"PostgreSQL at {PG_ADMIN_URL} is required (DRIFTLOOP_REQUIRE_PG is set) but unreachable"
            )
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} unreachable")
    name = _create_pg_database()
    url = pg_url(name)
    upgrade(url)
    yield url
    _drop_pg_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'driftloop.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'driftloop.db'}"
        upgrade(url)
        return url
    pg: str = request.getfixturevalue("pg_database")
    return pg


@pytest.fixture(scope="session")
def demo_estimator() -> Pipeline:
    return train_demo_estimator()


@pytest.fixture
def fake_registry(demo_estimator: Pipeline) -> FakeRegistry:
    return FakeRegistry("demo", {"1": demo_estimator}, "1")


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow SQLite store; migrating takes ~1.5 s, copying it ~1 ms."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def registry(tmp_path: Path, migrated_db: Path) -> Registry:
    """A Registry on a private SQLite store with artifacts under ``tmp_path``."""
    db = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_db, db)
    return Registry(f"sqlite:///{db}", artifact_location=str(tmp_path / "artifacts"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path) -> Iterator[str]:
    """A real ``mlflow server`` on a loopback port with proxied artifacts; yields its URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    shutil.copyfile(migrated_db, root / "mlflow.db")
    try:
        server = MlflowServer(root, _free_port()).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server.uri
    finally:
        server.stop()
