"""The arithmetic and bookkeeping of `make bench-loop` (the replay itself needs real servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._loop_report import summarize, write_section
from bench._loop_run import PolicyRun
from bench._loop_stream import Scenario, window_rows


def test_scenario_phases_and_drift_rows() -> None:
    s = Scenario(windows=6, window_rows=10, concept_at=2, concept_until=4, covariate_at=5)
    assert [s.phase(i) for i in range(6)] == ["pre", "pre", "flipped", "flipped", "reverted", "reverted+cov"]
    plan = s.plan()
    assert (plan.concept_at, plan.concept_until, plan.covariate_at) == (20, 40, 50)
    records, labels = window_rows(s.frame(), s, 5)
    assert len(records) == len(labels) == 10 and set(labels) <= {0, 1}
    with pytest.raises(ValueError, match="concept_until"):
        Scenario(windows=6, concept_at=3, concept_until=3)


def test_recovered_share_and_targets() -> None:
    s = Scenario(windows=4, window_rows=10, concept_at=2, covariate_at=None)
    runs = {
        "never": PolicyRun("never", accuracy=[0.8, 0.8, 0.3, 0.3]),
        "every": PolicyRun("every", accuracy=[0.8, 0.8, 0.3, 0.8], jobs=[{"status": "succeeded"}] * 10),
        "driftloop": PolicyRun("driftloop", accuracy=[0.8, 0.8, 0.3, 0.75], jobs=[{"status": "rejected"}]),
    }
    summary = summarize(runs, s)
    assert summary.lost == pytest.approx(0.5)
    assert summary.recovered == pytest.approx((0.525 - 0.3) / 0.5)
    assert summary.retrains == {"never": 0, "every": 10, "driftloop": 1}
    targets = summary.targets()
    assert targets["recovered >= 90%"] is False
    assert targets["retrains <= 1/5 of retrain-every-window"] is True
    assert targets["new champion serves within 60 s of the breach"] is False  # no promotion at all


def test_write_section_keeps_other_sections(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Serving\n\nserve figures\n")
    write_section(path, "## Retrain loop (x)\n\nfirst")
    write_section(path, "## Retrain loop, other stream (y)\n\nother")
    write_section(path, "## Retrain loop (x)\n\nsecond")
    text = path.read_text()
    assert "serve figures" in text and "other" in text and "second" in text and "first" not in text
    assert text.index("## Serving") < text.index("## Retrain loop (x)") < text.index("other stream")


def test_live_concept_run_counts_windows_until_a_post_drift_version_serves_every_row() -> None:
    from bench._loop_concept import LiveRun

    run = LiveRun("severe", versions=["1"] * 10 + ["1", "1,2", "2", "2"] + ["2"] * 6 + ["2", "2", "3"])
    assert run.windows_to_serve(10) == 2  # window 11 is answered by both: the swap is complete at 12
    assert run.windows_to_serve(20) == 2
    assert LiveRun("null", versions=["1"] * 5).windows_to_serve(2) is None
    run.jobs = [{"status": "succeeded"}, {"status": "rejected"}, {"status": "failed"}]
    assert run.retrains == 2
