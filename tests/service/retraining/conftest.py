from __future__ import annotations

import pytest

from retrain.bootstrap import bootstrap_demo
from retrain.registry import ModelVersionInfo, Registry
from tests.support.promotion import unique


@pytest.fixture(scope="session")
def template(mlflow_server: str) -> ModelVersionInfo:
    """One demo model uploaded once; each test registers its versions 1 and 2 from it (no upload)."""
    return bootstrap_demo(Registry(mlflow_server, experiment="promotion"), unique("template"), n_rows=600)


@pytest.fixture
def server(mlflow_server: str) -> Registry:
    """A registry on the real `mlflow server` of the session."""
    return Registry(mlflow_server, experiment="promotion")
