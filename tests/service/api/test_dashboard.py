from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from retrain.synthetic import FEATURES
from service.db.engine import make_engine
from service.db.tables import DriftRun, FeatureResult
from tests.support.core import FakeRegistry
from tests.support.dashboard_seed import START, seed


def _plots(page: str) -> dict[str, ET.Element]:
    blocks = re.findall(r'<svg class="feature-plot".*?</svg>', page, flags=re.S)
    plots = {}
    for block in blocks:
        svg = ET.fromstring(block)
        plots[svg.attrib["data-feature"]] = svg
    return plots


def _drift_flags(url: str) -> dict[str, list[bool]]:
    with make_engine(url).connect() as conn:
        rows = conn.exec_driver_sql("SELECT feature, is_drift FROM feature_results ORDER BY run_id").all()
    out: dict[str, list[bool]] = {}
    for feature, is_drift in rows:
        out.setdefault(feature, []).append(bool(is_drift))
    return out


def test_page_shows_champion_episode_runs_and_a_plot_per_feature(
    make_client: Callable[..., Any], sqlite_url: str
) -> None:
    seeded = seed(sqlite_url, runs=4, drift_from=2, window_rows=250)
    with make_client(sqlite_url) as client:
        response = client.get("/dashboard/models/demo")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<span class="champion-name">demo</span>' in page
    assert '<span class="champion-version">1</span>' in page
    assert f'data-episode-id="{seeded.episode_id}"' in page
    for run_id in seeded.run_ids:
        assert f'href="/v1/drift/runs/{run_id}"' in page
        assert f'href="/v1/drift/runs/{run_id}/report.html"' in page
    plots = _plots(page)
    flags = _drift_flags(sqlite_url)
    assert sorted(plots) == sorted(FEATURES)
    for feature, svg in plots.items():
        points = [c for c in svg.iter("circle") if "point" in c.attrib["class"].split()]
        assert len(points) == 4 and svg.attrib["data-points"] == "4"
        assert [c.attrib["data-drift"] == "true" for c in points] == flags[feature]
        assert [("drift" in c.attrib["class"].split()) for c in points] == flags[feature]
        assert [int(c.attrib["data-run-id"]) for c in points] == seeded.run_ids
        (threshold,) = [p for p in svg.iter("polyline") if p.attrib["class"] == "threshold"]
        xs = [float(pt.split(",")[0]) for pt in threshold.attrib["points"].split()]
        assert min(xs) == float(svg.find("rect").attrib["x"])  # type: ignore[union-attr]
    # the seeded drift (income shifted from window 2 on) is drawn above the threshold in time order
    incomes = [c for c in plots["income"].iter("circle")]
    assert [c.attrib["data-drift"] for c in incomes] == ["false", "false", "true", "true"]
    assert float(incomes[-1].attrib["cy"]) < float(incomes[0].attrib["cy"])


def test_data_endpoint_matches_the_tables(make_client: Callable[..., Any], sqlite_url: str) -> None:
    seeded = seed(sqlite_url, runs=3, drift_from=1, window_rows=250)
    with make_client(sqlite_url) as client:
        body = client.get("/v1/dashboard/data").json()
        two = client.get("/v1/dashboard/data", params={"runs": 2, "plot_runs": 2}).json()
        bad = client.get("/v1/dashboard/data", params={"runs": 0})
    assert body["champion"]["name"] == "demo" and body["champion"]["version"] == "1"
    assert [r["id"] for r in body["runs"]] == seeded.run_ids[::-1]
    assert [e["id"] for e in body["open_episodes"]] == [seeded.episode_id]
    flags = _drift_flags(sqlite_url)
    assert {f: [p["is_drift"] for p in pts] for f, pts in body["features"].items()} == flags
    for run_id, drifted in seeded.drifted.items():
        flagged = {
            f for f, pts in body["features"].items() for p in pts if p["run_id"] == run_id and p["is_drift"]
        }
        assert flagged == set(drifted)
    assert len(two["runs"]) == 2 and all(len(p) == 2 for p in two["features"].values())
    assert [p["run_id"] for p in two["features"]["income"]] == seeded.run_ids[-2:]
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "runs"]


def test_empty_database_and_missing_champion_still_render(
    make_client: Callable[..., Any], sqlite_url: str, fake_registry: FakeRegistry
) -> None:
    fake_registry.champion = None
    with make_client(sqlite_url) as client:
        page = client.get("/dashboard/models/demo").text
        data = client.get("/v1/dashboard/data").json()
    assert 'id="no-features"' in page and "No checks yet." in page and "none loaded" in page
    assert data["champion"]["version"] is None and "champion" in data["champion"]["error"]
    assert data["runs"] == [] and data["features"] == {} and data["open_episodes"] == []


def test_performance_runs_get_their_own_plot(make_client: Callable[..., Any], sqlite_url: str) -> None:
    seeded = seed(sqlite_url, runs=1, window_rows=120)
    accuracy = [0.91, 0.90, 0.78]  # the last window drops below the 0.86 floor
    with Session(make_engine(sqlite_url)) as session:
        for i, value in enumerate(accuracy):
            at = START + timedelta(hours=1, minutes=i)
            run = DriftRun(
                window_key=f"performance:demo:1:{i}",
                kind="performance",
                model_name="demo",
                model_version="1",
                window_start=at,
                window_end=at + timedelta(seconds=30),
                n_rows=200,
                status="drift" if value < 0.86 else "no_drift",
                is_breach=value < 0.86,
                summary="{}",
                started_at=at,
                finished_at=at,
            )
            session.add(run)
            session.flush()
            session.add(
                FeatureResult(
                    run_id=run.id or 0,
                    feature="accuracy",
                    kind="metric",
                    method="performance",
                    statistic=value,
                    threshold=0.86,
                    is_drift=value < 0.86,
                    status=run.status,
                )
            )
        session.commit()
    with make_client(sqlite_url) as client:
        page = client.get("/dashboard/models/demo").text
        data = client.get("/v1/dashboard/data").json()
    assert [p["statistic"] for p in data["performance"]["accuracy"]] == accuracy
    assert "accuracy" not in data["features"] and len(data["features"]["income"]) == len(seeded.run_ids)
    (block,) = re.findall(r'<svg class="performance-plot".*?</svg>', page, flags=re.S)
    svg = ET.fromstring(block)
    points = [c for c in svg.iter("circle")]
    assert svg.attrib["data-feature"] == "accuracy" and len(points) == 3
    assert [c.attrib["data-drift"] for c in points] == ["false", "false", "true"]
    (threshold,) = [p for p in svg.iter("polyline") if p.attrib["class"] == "threshold"]
    line_y = float(threshold.attrib["points"].split()[0].split(",")[1])
    assert float(points[0].attrib["cy"]) < line_y < float(points[2].attrib["cy"])  # the drop is drawn below
