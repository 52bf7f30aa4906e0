"""The dashboard says whether the loop is paused and the latest performance evidence in words."""

from __future__ import annotations

from sqlmodel import Session

from service.dashboard import loop_state
from service.dashboard.page import _automation, _performance
from service.db.engine import make_engine
from service.monitor import automation
from tests.support.monitor import settings, unique_model


def test_a_paused_loop_and_its_reason_are_shown(database_url: str) -> None:
    model = unique_model()
    s = settings(database_url, model)
    engine = make_engine(database_url)
    assert 'data-state="active"' in _automation(loop_state.automation_state(engine, s))
    with Session(engine) as session, session.begin():
        automation.set_state(
            session, model, "paused", reason="rolled back from version 3 to 2", by="rollback"
        )
    shown = _automation(loop_state.automation_state(engine, s))
    assert 'data-state="paused"' in shown and "rolled back from version 3 to 2" in shown
    assert "until a person resumes it" in shown
    named = _automation(loop_state.automation_state(engine, s), "credit risk")
    assert "POST /v1/models/credit%20risk/automation to resume" in named
    assert loop_state.latest_evidence(engine, model_name=model) is None


def test_the_latest_evidence_is_said_in_words() -> None:
    evidence = {
        "is_breach": True,
        "message": "accuracy 0.7900 on 1000 rows vs baseline 0.8300 (fisher_exact p=0.002)",
    }
    html = _performance({"accuracy": [{"value": 0.79}]}, evidence)
    assert 'id="performance-evidence" class="breach"' in html and "fisher_exact p=0.002" in html
