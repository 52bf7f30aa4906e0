from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from retrain.synthetic import FEATURES
from service.config import Settings
from tests.browser.server import serve
from tests.support.core import FakeRegistry
from tests.support.dashboard_seed import Seeded, seed

pytestmark = pytest.mark.browser

RUNS = 4


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str, fake_registry: FakeRegistry) -> Iterator[tuple[str, Seeded]]:
    seeded = seed(sqlite_url, runs=RUNS, drift_from=2, window_rows=250)
    settings = Settings(
        data_dir=tmp_path, database_url=sqlite_url, model_name="demo", embedded_scheduler=False
    )
    for base in serve(settings, fake_registry):
        yield base, seeded


def test_dashboard_plots_and_links_work_in_chromium(browser: Any, site: tuple[str, Seeded]) -> None:
    base, seeded = site
    page = browser.new_page()
    foreign: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((base, "data:")) else foreign.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))

    response = page.goto(base + "/dashboard/models/demo")
    assert response is not None and response.status == 200
    assert page.title() == "driftloop: demo"
    assert page.inner_text("#champion .champion-version") == "1"
    assert page.locator(f'#open-episodes li.episode[data-episode-id="{seeded.episode_id}"]').is_visible()

    data = orjson.loads(page.request.get(base + "/v1/dashboard/data").body())
    for feature in FEATURES:
        plot = page.locator(f'svg.feature-plot[data-feature="{feature}"]')
        assert plot.is_visible()
        points = plot.locator("circle.point")
        assert points.count() == RUNS
        threshold = plot.locator("polyline.threshold")
        box = threshold.bounding_box()
        plot_box = plot.bounding_box()
        assert box is not None and plot_box is not None and box["width"] > 0.8 * plot_box["width"] - 80
        expected = [p["is_drift"] for p in data["features"][feature]]
        assert plot.locator("circle.point.drift").count() == sum(expected)
        for i in range(RUNS):  # every point is drawn inside its plot
            pb = points.nth(i).bounding_box()
            assert pb is not None and plot_box["y"] <= pb["y"] <= plot_box["y"] + plot_box["height"]
    # a drifted point lies above the threshold line (distance methods: drift at or above)
    income = page.locator('svg.feature-plot[data-feature="income"]')
    last = income.locator("circle.point").nth(RUNS - 1).bounding_box()
    line = income.locator("polyline.threshold").bounding_box()
    assert last is not None and line is not None and last["y"] + last["height"] < line["y"] + line["height"]

    run_id = seeded.run_ids[-1]
    rows = page.locator("table#runs tr.run")
    assert rows.count() == RUNS and rows.first.get_attribute("data-run-id") == str(run_id)

    # the report link opens an Evidently report that the browser renders (React draws into its root div)
    page.click(f'tr.run[data-run-id="{run_id}"] a.run-report')
    page.wait_for_url(f"{base}/v1/drift/runs/{run_id}/report.html")
    assert page.locator("#driftloop-run").get_attribute("data-run-id") == str(run_id)
    page.get_by_text("Drifted Columns").first.wait_for(timeout=30_000)
    assert "income" in page.inner_text("body")

    # a plot point links to its run's report too
    page.go_back()
    page.click(f'svg.feature-plot[data-feature="income"] circle.point[data-run-id="{seeded.run_ids[0]}"]')
    page.wait_for_url(f"{base}/v1/drift/runs/{seeded.run_ids[0]}/report.html")
    page.get_by_text("Drifted Columns").first.wait_for(timeout=30_000)

    assert not errors, errors
    assert not foreign, f"the page reached outside the server: {foreign}"

    # the JSON link opens the run itself (a missing route fails here, never skips)
    page.go_back()
    json_link = page.locator(f'tr.run[data-run-id="{run_id}"] a.run-json')
    assert json_link.get_attribute("href") == f"/v1/drift/runs/{run_id}"
    json_link.click()
    page.wait_for_url(f"{base}/v1/drift/runs/{run_id}")
    assert orjson.loads(page.inner_text("body"))["id"] == run_id
