"""Three watched models in a real Chromium: the overview's numbers are the database's, each row links to
its model's page (progress toward the next window, retrain and version history), an unknown model is a
404 page naming the known ones, and nothing is fetched from outside the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sklearn.pipeline import Pipeline

from service.config import Settings
from service.db.engine import make_engine
from tests.browser.server import serve
from tests.support.fleet_seed import Fleet, seed_fleet

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str, demo_estimator: Pipeline) -> Iterator[tuple[str, Fleet]]:
    fleet = seed_fleet(sqlite_url, demo_estimator, "churn", "fraud", "credit risk")
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, model_name=fleet.a,
                        models=f"{fleet.b},{fleet.c}", embedded_scheduler=False)  # fmt: skip
    for base in serve(settings, fleet.registries(demo_estimator)):  # type: ignore[arg-type]
        yield base, fleet


def _db(url: str) -> dict[str, dict[str, Any]]:
    """Per model, read straight from the tables: the newest drift run, its labeled rows, open episodes,
    the rows logged after it and the newest retrain job."""
    out: dict[str, dict[str, Any]] = {}
    engine = make_engine(url)
    with engine.connect() as conn:
        for (name,) in conn.execute(sa.text("SELECT DISTINCT model_name FROM predictions")):
            run = conn.execute(
                sa.text("SELECT id, n_rows, summary FROM drift_runs WHERE model_name = :m AND kind = 'drift' "
                        "ORDER BY id DESC LIMIT 1"), {"m": name}
            ).one()  # fmt: skip
            window = orjson.loads(run.summary)["window"]
            span = {"m": name, "lo": window["first_seq"], "hi": window["last_seq"]}
            labeled = conn.execute(
                sa.text("SELECT count(*) FROM predictions p JOIN feedback f ON f.prediction_id = p.id "
                        "WHERE p.model_name = :m AND p.seq BETWEEN :lo AND :hi"), span
            ).scalar_one()  # fmt: skip
            after = conn.execute(
                sa.text("SELECT count(*) FROM predictions WHERE model_name = :m AND seq > :hi"), span
            ).scalar_one()
            labels = conn.execute(
                sa.text("SELECT count(*) FROM predictions p JOIN feedback f ON f.prediction_id = p.id "
                        "WHERE p.model_name = :m"), span
            ).scalar_one()  # fmt: skip
            out[name] = {
                "run": run.id,
                "rows": run.n_rows,
                "labeled": labeled,
                "after": after,
                "labels": labels,
            }
        for name, count in conn.execute(
            sa.text("SELECT model_name, count(*) FROM episodes WHERE status = 'open' GROUP BY model_name")
        ):
            out.setdefault(name, {})["episodes"] = count
    engine.dispose()
    return out


def test_overview_links_to_each_model_page_with_the_numbers_of_the_database(
    browser: Any, site: tuple[str, Fleet], sqlite_url: str
) -> None:
    base, fleet = site
    db = _db(sqlite_url)
    page = browser.new_page()
    foreign: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((base, "data:")) else foreign.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))

    response = page.goto(base + "/")
    assert response is not None and response.status == 200
    assert page.title() == "driftloop: 3 models"
    rows = page.locator("table#models tr.model")
    assert [rows.nth(i).get_attribute("data-model") for i in range(rows.count())] == list(fleet.names)
    for name in (fleet.a, fleet.b):
        row = page.locator(f'tr.model[data-model="{name}"]')
        assert row.locator(".window-rows").inner_text() == str(db[name]["rows"])
        assert row.locator(".window-labeled").inner_text() == str(db[name]["labeled"])
        assert row.locator(".open-episodes").get_attribute("data-count") == str(db[name].get("episodes", 0))
    assert db[fleet.a]["labeled"] == 400 and db[fleet.b]["episodes"] == 1  # the seed did what it says
    a_row = page.locator(f'tr.model[data-model="{fleet.a}"]')
    b_row = page.locator(f'tr.model[data-model="{fleet.b}"]')
    c_row = page.locator(f'tr.model[data-model="{fleet.c}"]')
    assert a_row.locator(".champion-version").inner_text() == "1"
    assert b_row.locator(".champion-version").inner_text() == "2"
    assert b_row.locator(".drift-status").get_attribute("data-status") == "drift"
    assert b_row.locator(".retrain-status").inner_text() == "succeeded"
    assert "none loaded" in c_row.inner_text()
    assert c_row.locator(".automation").get_attribute("data-state") == "paused"
    assert a_row.locator(".automation").get_attribute("data-state") == "active"

    # overview -> a model page (its name holds a space: the link escapes it)
    b_row.locator("a.model-link").click()
    page.wait_for_url(f"{base}/dashboard/models/{fleet.b}")
    assert page.title() == f"driftloop: {fleet.b}"
    assert page.inner_text("#champion .champion-version") == "2"
    progress = page.locator("#next-window")
    assert progress.get_attribute("data-rows") == str(db[fleet.b]["after"]) == "200"
    assert "200 / 1000 rows" in progress.inner_text()
    assert page.locator(f'tr.retrain[data-job-id="{fleet.job_id}"] .promoted').inner_text() == "yes"
    assert page.locator(f'#open-episodes li.episode[data-episode-id="{fleet.episode_id}"]').is_visible()
    assert page.locator('tr.version[data-version="2"]').is_visible()
    assert page.locator("table#runs tr.run").first.get_attribute("data-run-id") == str(db[fleet.b]["run"])

    page.click("#overview-link")
    page.wait_for_url(f"{base}/")
    a_row.locator("a.model-link").click()
    page.wait_for_url(f"{base}/dashboard/models/{fleet.a}")
    assert page.locator("#next-window").get_attribute("data-rows") == str(db[fleet.a]["after"]) == "601"
    assert "601 / 1000 rows" in page.inner_text("#next-window")
    assert page.locator("#next-window progress").get_attribute("value") == "601"
    # the seed checked performance blocks of 200; the page's settings cut blocks of 500: none checked yet
    labels = page.locator("#next-label-window")
    assert labels.get_attribute("data-rows") == str(db[fleet.a]["labels"]) == "400"
    assert "400 / 500 labeled rows" in labels.inner_text()
    assert "No retrain yet" in page.inner_text("#retrain-history")

    page.goto(base + "/")
    c_row.locator("a.model-link").click()
    page.wait_for_url(f"{base}/dashboard/models/credit%20risk")
    assert page.inner_text("#model-name") == fleet.c and "none loaded" in page.inner_text("#champion")

    missing = page.goto(base + "/dashboard/models/nope")
    assert missing is not None and missing.status == 404
    assert page.inner_text("#unknown-model") == "nope"
    assert page.locator("#known-models a").all_inner_texts() == list(fleet.names)

    assert not errors, errors
    assert not foreign, f"the page reached outside the server: {foreign}"
