from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlmodel import Session, col, select

from retrain.synthetic import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES
from service.dashboard import queries, report
from service.db.engine import make_engine
from service.db.tables import DriftRun, Feedback, Prediction
from tests.support.dashboard_seed import seed


def _run(url: str, run_id: int) -> queries.RunRef:
    engine = make_engine(url)
    run = queries.get_run(engine, run_id)
    assert run is not None
    return run


def test_frames_are_bounded_samples_typed_like_the_reference(sqlite_url: str) -> None:
    seeded = seed(sqlite_url, runs=2, drift_from=1, window_rows=300)
    engine = make_engine(sqlite_url)
    run = _run(sqlite_url, seeded.run_ids[-1])
    current, reference, numeric, categorical = report.report_frames(engine, run, max_rows=120)
    # every 3rd of the 300 window rows; the reference sample (3000 rows) is cut to the same bound
    assert len(current) == 100 and len(reference) == 120
    assert sorted(numeric) == sorted(NUMERIC_FEATURES) and sorted(categorical) == sorted(CATEGORICAL_FEATURES)
    assert list(current.columns) == list(reference.columns) and set(current.columns) == set(FEATURES)
    assert all(current[c].dtype == float and reference[c].dtype == float for c in numeric)
    assert all(isinstance(v, str) for c in categorical for v in current[c].dropna())
    # only the run's own window: the drifted second window's incomes are far above the first's
    first = report.report_frames(engine, _run(sqlite_url, seeded.run_ids[0]), max_rows=120)[0]
    assert current["income"].mean() > first["income"].mean() + 0.5 * first["income"].std()


def test_report_is_rendered_once_then_served_from_cache(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(sqlite_url, runs=1, window_rows=250)
    engine = make_engine(sqlite_url)
    run = _run(sqlite_url, seeded.run_ids[0])
    path = report.build_report(engine, run, tmp_path / "reports")
    page = path.read_text(encoding="utf-8")
    assert path.parent == tmp_path / "reports" and path.name.startswith(f"run-{run.id}-")
    assert f'data-run-id="{run.id}"' in page and "Drifted Columns" in page
    assert all(f in page for f in FEATURES)
    assert not list(path.parent.glob(".report-*"))  # no temporary file left behind

    def fail(*args: object, **kwargs: object) -> str:
        raise AssertionError("a cached report was rendered again")

    monkeypatch.setattr(report, "render_html", fail)
    assert report.build_report(engine, run, tmp_path / "reports") == path


def test_missing_reference_or_rows_is_reported_not_crashed(sqlite_url: str, tmp_path: Path) -> None:
    seeded = seed(sqlite_url, runs=1, window_rows=120, reference=False)
    engine = make_engine(sqlite_url)
    run = _run(sqlite_url, seeded.run_ids[0])
    with pytest.raises(report.ReportUnavailable, match="no reference profile is stored for model 'demo'"):
        report.build_report(engine, run, tmp_path / "reports")
    assert not (tmp_path / "reports").exists()
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM predictions")
    seed(sqlite_url, runs=0)  # stores the reference only
    with pytest.raises(report.ReportUnavailable, match="no logged predictions"):
        report.build_report(engine, run, tmp_path / "reports")


def test_performance_run_window_is_its_labels_arrival_range(sqlite_url: str) -> None:
    seed(sqlite_url, runs=1, window_rows=200)
    engine = make_engine(sqlite_url)
    arrived = datetime(2026, 2, 1, tzinfo=UTC)
    with Session(engine) as session:
        predictions = session.exec(select(Prediction).order_by(col(Prediction.created_at))).all()
        labeled = predictions[::2]  # half the traffic gets labels, a day later
        for i, p in enumerate(labeled):
            session.add(Feedback(prediction_id=p.id, label="1", received_at=arrived + timedelta(seconds=i)))
        run = DriftRun(
            window_key="perf:demo:1:0",
            kind="performance",
            model_name="demo",
            model_version="1",
            window_start=arrived,
            window_end=arrived + timedelta(seconds=len(labeled) - 1),
            n_rows=len(labeled),
            status="no_drift",
            summary="{}",
            started_at=arrived,
            finished_at=arrived,
        )
        session.add(run)
        session.commit()
        expected = sorted(orjson.loads(p.features)["income"] for p in labeled)
        run_id = run.id or 0
    current = report.report_frames(engine, _run(sqlite_url, run_id), max_rows=5000)[0]
    assert sorted(current["income"]) == expected
    assert len(report.report_frames(engine, _run(sqlite_url, run_id), max_rows=40)[0]) == 34  # every 3rd


def test_report_leads_with_driftloops_decision_before_evidentlys_panels(
    sqlite_url: str, tmp_path: Path
) -> None:
    seeded = seed(sqlite_url, runs=2, drift_from=1, window_rows=300)
    engine = make_engine(sqlite_url)
    run = _run(sqlite_url, seeded.run_ids[-1])
    with Session(engine) as session:
        stored = session.get(DriftRun, run.id)
        assert stored is not None
        summary = orjson.loads(stored.summary)
    page = report.build_report(engine, run, tmp_path / "reports").read_text(encoding="utf-8")
    lead = page.index('id="driftloop-verdict"')
    body = page.index("<body>")
    assert body < lead < page.index('<div id="root_metric', body)  # before Evidently's panels
    assert '<a href="/dashboard/models/demo">demo</a>' in page[body:lead]  # back to the model's page
    assert f"driftloop's decision: <code>{summary['status']}</code>" in page
    for f in summary["features"]:  # each feature with the method and threshold driftloop used
        assert f"<td>{f['name']}</td><td>{f['method']}</td>" in page
        assert f"<td>{f['threshold']:.4g}</td>" in page
    if summary["multivariate"]:
        assert "domain classifier AUC" in page


def test_verdict_names_the_classifier_and_a_missing_value_breach() -> None:
    summary = {
        "status": "drift",
        "drift_share": 0.5,
        "drift_share_threshold": 0.5,
        "features": [
            {"name": "x", "method": "wasserstein", "statistic": 0.01, "p_val": None, "threshold": 0.1,
             "missing_rate_ref": 0.01, "missing_rate_cur": 0.3, "status": "data_quality", "is_drift": False,
             "missing_is_drift": True, "reason": "missing values rose from 1.0% to 30.0%"},
            {"name": "y", "method": "wasserstein", "statistic": 0.02, "p_val": None, "threshold": 0.1,
             "missing_rate_ref": 0.0, "missing_rate_cur": 0.0, "status": "no_drift", "is_drift": False},
        ],
        "multivariate": {"auc": 0.9, "threshold": 0.55, "p_val": 1e-9, "alpha": 0.01, "is_drift": True},
        "data_quality": True,
        "data_quality_features": ["x"],
    }  # fmt: skip
    lead = report.verdict_html(summary)
    assert "1 of 2 features changed" in lead and "missing-value breach in x" in lead
    assert "drift, which alone makes the dataset drift" in lead and "missing values rose from 1.0%" in lead
    assert report.verdict_html({"metric": "accuracy"}) == ""  # performance runs have no feature lead


def test_a_poisoned_window_still_renders_and_says_what_was_left_out(sqlite_url: str, tmp_path: Path) -> None:
    """Rows the API refuses today (1e308, a 400-digit integer), written straight into the log inside a run's
    window: the report leaves them out, says how many, and renders (a 500 before, also after restart)."""
    seeded = seed(sqlite_url, runs=1, window_rows=250)
    engine = make_engine(sqlite_url)
    run = _run(sqlite_url, seeded.run_ids[0])
    with Session(engine) as session:
        template = session.exec(select(Prediction).where(Prediction.model_name == run.model_name)).first()
        assert template is not None
        base = orjson.loads(template.features)
    texts = [
        orjson.dumps({**base, "age": 1e308}).decode(),
        orjson.dumps({**base, "balance": -1e300}).decode(),
        orjson.dumps({**base, "income": 0}).decode().replace('"income":0', '"income":1' + "0" * 400),
    ]
    middle = run.window_start + (run.window_end - run.window_start) / 2
    with engine.begin() as conn:
        from service.serving import store

        rows = [
            {"id": f"00000000-0000-7000-8000-00000000000{i}", "created_at": middle, "features": text,
             "model_name": run.model_name, "model_version": run.model_version, "output": "0",
             "probabilities": None, "latency_ms": 1.0, "endpoint": "predict"}
            for i, text in enumerate(texts)
        ]  # fmt: skip
        store.insert_predictions(conn, rows=rows)
    current, reference, numeric, _ = report.report_frames(engine, run, max_rows=5000)
    assert current.attrs[report.DROPPED] == 3 and len(current) == 250
    assert all(current[c].abs().max() < 1e15 for c in numeric)
    page = report.build_report(engine, run, tmp_path / "reports").read_text(encoding="utf-8")
    assert 'id="driftloop-dropped" data-window="3"' in page and "Drifted Columns" in page
