"""One log writer for every model: concurrent requests to three models are committed together, in shared
transactions (group commit across models), and every row lands under the model that answered it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from sklearn.pipeline import Pipeline

from service.config import Settings
from service.serving import log_writer
from tests.browser.server import serve
from tests.support.core import sample_records
from tests.support.models import FakeRegistries

MODELS = ("demo", "churn", "fraud")


def test_rows_of_all_models_share_the_group_commits(
    tmp_path: Path, sqlite_url: str, demo_estimator: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits: list[Counter[str]] = []
    lock = threading.Lock()
    real = log_writer._commit

    def recorded(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
        time.sleep(0.02)  # a commit that takes a moment: requests meanwhile queue for the next one
        real(engine, rows)
        with lock:
            commits.append(Counter(r["model_name"] for r in rows))

    monkeypatch.setattr(log_writer, "_commit", recorded)
    registries = FakeRegistries({name: ({"1": demo_estimator}, "1") for name in MODELS})
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, model_name="demo", models="churn,fraud",
                        embedded_scheduler=False, model_poll_seconds=0.05)  # fmt: skip
    record = sample_records(1, seed=3)
    paths = {"demo": "/v1/predict", "churn": "/v1/models/churn/predict", "fraud": "/v1/models/fraud/predict"}
    for base in serve(settings, registries):  # type: ignore[arg-type]
        with requests.Session() as warm:  # every model loaded before the burst
            for name in MODELS:
                assert warm.post(base + paths[name], json={"instances": record}).status_code == 200
        commits.clear()

        def call(i: int, base: str = base) -> tuple[str, int]:
            name = MODELS[i % 3]
            r = requests.post(base + paths[name], json={"instances": record}, timeout=30)
            return name, r.status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(call, range(120)))
    assert Counter(answers) == Counter({(m, 200): 40 for m in MODELS})
    total = sum(commits, Counter())
    assert total == Counter({m: 40 for m in MODELS})  # each answered row was committed once, under its model
    mixed = [c for c in commits if len(c) > 1]
    assert mixed, f"no commit held rows of two models: {commits}"
    assert len(commits) < 120  # rows were grouped, not one transaction each
