"""The estimated metric beside the realized one, and the drift root cause: the dashboard's data and page,
and the stored runs through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sklearn.pipeline import Pipeline

from detectors.estimated import CBPE_LIMITS
from service.app import create_app
from tests.support.core import FakeRegistry
from tests.support.estimation import seed_estimation
from tests.support.monitor import unique_model


@pytest.fixture
def client(
    database_url: str, tmp_path: Path, demo_estimator: Pipeline, fake_registry: FakeRegistry
) -> Iterator[TestClient]:
    name = unique_model()  # the PostgreSQL database is shared within a session
    settings = seed_estimation(database_url, demo_estimator, name=name).model_copy(
        update={"data_dir": tmp_path, "embedded_scheduler": False, "model_poll_seconds": 0.05}
    )
    app = create_app(settings, loader=(fake_registry.resolve, fake_registry.fetch))
    with TestClient(app) as c:
        yield c


def test_dashboard_charts_the_estimate_with_its_band_beside_realized(client: TestClient) -> None:
    body = client.get("/v1/dashboard/data").json()
    data = body["estimation"]
    assert data["metric"] == "accuracy" and data["limits"] == CBPE_LIMITS
    points = data["estimated"]
    assert [p["is_drift"] for p in points] == [False, False, True, True, True]
    assert all(p["lower"] <= p["value"] <= p["upper"] for p in points)
    assert all(p["threshold"] == pytest.approx(p["baseline"] - 0.02) for p in points)
    assert data["root_cause"]["sentence"].startswith("The drift that matters to this model:")

    page = client.get(f"/dashboard/models/{body['model_name']}").text
    (block,) = re.findall(r'<svg class="estimated-plot".*?</svg>', page, flags=re.S)
    svg = ET.fromstring(block)
    assert svg.attrib["data-metric"] == "accuracy" and svg.attrib["data-points"] == "5"
    assert int(svg.attrib["data-realized-points"]) >= 1  # realized accuracy of the labeled windows
    assert [p.attrib["class"] for p in svg.iter("polygon")] == ["band"]
    circles = [c for c in svg.iter("circle") if "estimated" in c.attrib["class"].split()]
    assert [("drift" in c.attrib["class"].split()) for c in circles] == [False, False, True, True, True]
    assert [float(c.attrib["data-value"]) for c in circles] == [p["value"] for p in points]
    sentence = re.search(r'<p id="root-cause"[^>]*>(.*?) <a', page, flags=re.S)
    assert sentence is not None and sentence.group(1).startswith("The drift that matters to this model:")
    assert 'id="estimate-limits"' in page and "cannot see concept" in page


def test_estimated_runs_are_listed_and_carry_the_limits(client: TestClient) -> None:
    page = client.get("/v1/drift/runs", params={"kind": "estimated_performance"}).json()
    assert page["total"] == 5
    latest = client.get("/v1/drift/latest", params={"kind": "estimated_performance"}).json()
    assert latest["kind"] == "estimated_performance" and latest["is_breach"] is True
    assert latest["summary"]["limits"] == CBPE_LIMITS
    assert latest["summary"]["breach"]["p_val"] < 0.01
    drift = client.get("/v1/drift/latest", params={"kind": "drift"}).json()
    assert drift["summary"]["root_cause"]["top"], drift["summary"]["root_cause"]
    assert client.get("/v1/drift/runs", params={"kind": "estimated"}).status_code == 422
