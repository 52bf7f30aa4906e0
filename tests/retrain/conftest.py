"""Fixtures for the retrain tests: a migrated MLflow store per test, a real ``mlflow server``, demo data."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from retrain.bootstrap import build_demo_pipeline
from retrain.registry import Registry
from retrain.synthetic import FEATURES, TARGET, generate

VENV_BIN = Path(sys.executable).parent


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


@pytest.fixture(scope="session")
def demo_data() -> pd.DataFrame:
    return generate(3000, seed=11)


@pytest.fixture(scope="session")
def demo_model(demo_data: pd.DataFrame) -> Pipeline:
    return build_demo_pipeline().fit(demo_data[list(FEATURES)], demo_data[TARGET])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path) -> Iterator[str]:
    """A real ``mlflow server`` on a loopback port with proxied artifacts; yields its URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    shutil.copyfile(migrated_db, root / "mlflow.db")  # skips the server's own migration
    port = _free_port()
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # the job runner (GenAI scorers) starts ~8 huey worker processes the registry does not need
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    command = [
        str(VENV_BIN / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = (root / "server.log").open("wb")
    # own session: mlflow server runs uvicorn as a child, and teardown must stop both
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited early:\n{(root / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server not healthy after 60 s:\n{(root / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(0.2)
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
