"""The published OpenAPI schema tells the truth: schemathesis, every operation, every check (issue 14, 7).

One exception, stated: `positive_data_acceptance` is not asked of the operations whose bodies are decided by
state the schema cannot carry. Model endpoints validate records against the served model's MLflow signature
(another model, another signature, swapped at run time: the schema says "an object of feature values" and
the 422 names the feature), webhook targets are checked against DNS answers and the target policy, and
a watched model must be registered in MLflow (PUT) or watched (DELETE).
Every other rule of those operations, and every rule of the others, is in the schema.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from retrain.registry import Registry
from service.app import create_app
from service.config import Settings
from service.db.engine import upgrade
from service.serving.holder import LoadedModel
from tests.support.core import FakeRegistry, train_demo_estimator

ADMIN_TOKEN = "contract-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DECIDED_ELSEWHERE = {
    "POST /v1/predict",
    "POST /v1/models/{name}/predict",
    "POST /invocations",
    "POST /models/{name}/invocations",
    "POST /v1/webhooks",
    "PATCH /v1/webhooks/{webhook_id}",
    # whether the name is registered in MLflow (PUT) or watched at run time (DELETE)
    "PUT /v1/models/{name}/watch",
    "DELETE /v1/models/{name}/watch",
}

# Built at import: schemathesis parametrizes from the schema the running app serves.
_TMP = Path(tempfile.mkdtemp(prefix="driftloop-contract-"))
_DB = f"sqlite:///{_TMP / 'driftloop.db'}"
_FAKE = FakeRegistry("demo", {}, "1")


def _fetch(name: str, version: str) -> LoadedModel:
    if version not in _FAKE.estimators:
        _FAKE.estimators[version] = train_demo_estimator(500)
    return _FAKE.fetch(name, version)


_SETTINGS = Settings(
    data_dir=_TMP,
    database_url=_DB,
    model_name="demo",
    embedded_scheduler=False,
    admin_token=ADMIN_TOKEN,
    webhook_timeout_seconds=0.5,  # generated host names are resolved: fail fast
)
_REGISTRY = Registry(f"sqlite:///{_TMP / 'mlflow.db'}", artifact_location=str(_TMP / "artifacts"))
APP = create_app(_SETTINGS, loader=(_FAKE.resolve, _fetch), registry=_REGISTRY)
upgrade(_DB)  # loading the schema runs the app's lifespan, which needs a migrated database
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
CASES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    from schemathesis.python.asgi import shutdown_lifespans

    shutdown_lifespans()
    shutil.rmtree(_TMP, ignore_errors=True)
    print(f"\nschemathesis: {sum(CASES.values())} cases over {len(CASES)} operations")  # noqa: T201


def _validate(case: Any) -> None:
    CASES[case.operation.label] += 1
    excluded = [positive_data_acceptance] if case.operation.label in DECIDED_ELSEWHERE else []
    case.call_and_validate(headers=ADMIN, excluded_checks=excluded)


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_keeps_its_published_contract(case: Any) -> None:
    _validate(case)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_keeps_its_published_contract_long(case: Any) -> None:
    _validate(case)
