from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.support.core import FakeRegistry


@pytest.fixture
def make_client(tmp_path: Path, fake_registry: FakeRegistry) -> Callable[..., Any]:
    @contextmanager
    def factory(database_url: str, **overrides: Any) -> Iterator[TestClient]:
        settings = Settings(
            data_dir=tmp_path,
            database_url=database_url,
            model_name="demo",
            model_poll_seconds=overrides.pop("model_poll_seconds", 0.05),
            embedded_scheduler=False,
            **overrides,
        )
        app = create_app(settings, loader=(fake_registry.resolve, fake_registry.fetch))
        with TestClient(app) as client:
            yield client

    return factory
