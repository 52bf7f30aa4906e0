"""The label-free section in a real Chromium: the estimated metric with its band beside the realized one,
and the root-cause sentence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sklearn.pipeline import Pipeline

from service.config import Settings
from tests.browser.server import serve
from tests.support.core import FakeRegistry
from tests.support.estimation import seed_estimation

pytestmark = pytest.mark.browser


@pytest.fixture
def site(
    tmp_path: Path, sqlite_url: str, demo_estimator: Pipeline, fake_registry: FakeRegistry
) -> Iterator[str]:
    seed_estimation(sqlite_url, demo_estimator, name="demo")
    settings = Settings(
        data_dir=tmp_path, database_url=sqlite_url, model_name="demo", embedded_scheduler=False
    )
    yield from serve(settings, fake_registry)


def test_estimated_chart_and_root_cause_render_in_chromium(browser: Any, site: str) -> None:
    page = browser.new_page()
    errors: list[str] = []
    foreign: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith((site, "data:")) else foreign.append(r.url))
    response = page.goto(site + "/dashboard/models/demo")
    assert response is not None and response.status == 200

    cause = page.locator("#root-cause")
    assert cause.is_visible()
    assert cause.inner_text().startswith("The drift that matters to this model:")

    plot = page.locator('svg.estimated-plot[data-metric="accuracy"]')
    assert plot.is_visible()
    box = plot.bounding_box()
    band = plot.locator("polygon.band").bounding_box()
    assert box is not None and band is not None and band["width"] > 0.8 * box["width"] - 80
    points = plot.locator("circle.point.estimated")
    assert points.count() == 5 and plot.locator("circle.point.estimated.drift").count() == 3
    assert plot.locator("rect.realized").count() >= 1
    line = plot.locator("polyline.threshold").bounding_box()
    assert line is not None
    first, last = points.nth(0).bounding_box(), points.nth(4).bounding_box()
    assert first is not None and last is not None
    # a breaching estimate is drawn below the breach line, a clean one above it
    assert last["y"] > line["y"] + line["height"] and first["y"] + first["height"] < line["y"] + 1
    for i in range(5):
        pb = points.nth(i).bounding_box()
        assert pb is not None and box["y"] <= pb["y"] <= box["y"] + box["height"]
    assert page.locator("#estimate-limits").inner_text().startswith("Estimated without labels (CBPE)")

    data = orjson.loads(page.request.get(site + "/v1/dashboard/data").body())["estimation"]
    assert cause.inner_text().startswith(data["root_cause"]["sentence"])
    assert not errors, errors
    assert not foreign, foreign
