"""A model's version and retrain history, from the database alone (the page renders while MLflow is down).

Versions are the ones with a stored reference profile (every registered or promoted champion gets one),
with when each became champion (the `model.promoted` / `model.rolled_back` events) and its traffic from
the daily rollups. Retrains are the newest jobs with the gate's numbers. Every read is bounded by a limit
on an indexed column.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.codec import loads
from service.db.tables import Event, ReferenceProfileRow, RetrainJob

VERSIONS = 20
JOBS = 20
CHAMPION_EVENTS = ("model.promoted", "model.rolled_back")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def version_history(
    engine: sa.Engine,
    *,
    model_name: str,
    champion: str | None,
    traffic: list[dict[str, Any]],
    limit: int = VERSIONS,
) -> list[dict[str, Any]]:
    """The newest `limit` versions, newest first. `traffic`: the model's daily rollups (already read)."""
    versions = (
        select(ReferenceProfileRow.model_version, ReferenceProfileRow.created_at, ReferenceProfileRow.source)
        .where(ReferenceProfileRow.model_name == model_name)
        .order_by(col(ReferenceProfileRow.created_at).desc(), col(ReferenceProfileRow.id).desc())
        .limit(limit)
    )
    changes = (
        select(Event.type, Event.model_version, Event.created_at)
        .where(col(Event.type).in_(CHAMPION_EVENTS), Event.model_name == model_name)
        .order_by(col(Event.created_at).desc())
        .limit(limit * 4)
    )
    with Session(engine) as session:
        rows = session.exec(versions).all()
        events = session.exec(changes).all()
    became: dict[str, tuple[str, str]] = {}  # version -> (how, when) of its latest change to champion
    for kind, version, at in events:  # newest first: the first seen is the latest
        if version is not None and version not in became:
            became[version] = ("promoted" if kind == "model.promoted" else "rolled back to", at.isoformat())
    served: dict[str, int] = {}
    for day in traffic:
        served[day["model_version"]] = served.get(day["model_version"], 0) + day["predictions"]
    out = [
        {
            "version": version,
            "registered_at": created_at.isoformat(),
            "source": source,
            "champion": version == champion,
            "became_champion": became.get(version, (None, None))[0],
            "champion_since": became.get(version, (None, None))[1],
            "predictions": served.get(version, 0),
        }
        for version, created_at, source in rows
    ]
    if champion is not None and not any(v["champion"] for v in out):  # served without a stored reference
        how, since = became.get(champion, (None, None))
        out.insert(0, {"version": champion, "registered_at": None, "source": None, "champion": True,
                       "became_champion": how, "champion_since": since,
                       "predictions": served.get(champion, 0)})  # fmt: skip
    return out


def retrain_history(engine: sa.Engine, *, model_name: str, limit: int = JOBS) -> list[dict[str, Any]]:
    """The newest `limit` retrain jobs, newest first, with the gate's verdict."""
    stmt = (
        select(RetrainJob)
        .where(RetrainJob.model_name == model_name)
        .order_by(col(RetrainJob.id).desc())
        .limit(limit)
    )
    with Session(engine) as session:
        jobs = session.exec(stmt).all()
    return [job_summary(job) for job in jobs]


def job_summary(job: RetrainJob) -> dict[str, Any]:
    details = loads(job.details) if job.details else {}
    details = details if isinstance(details, dict) else {}
    scored = details.get("challenger_score") is not None and details.get("champion_score") is not None
    # a job ends `succeeded` only by promoting, `rejected` only by the gate (or the compare-and-set)
    gate = {"succeeded": "passed", "rejected": "failed"}.get(job.status) if scored else None
    return {
        "id": job.id,
        "status": job.status,
        "trigger": job.trigger,
        "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at),
        "champion_version": job.champion_version,
        "result_version": job.result_version,
        "metric": details.get("metric"),
        "champion_score": details.get("champion_score"),
        "challenger_score": details.get("challenger_score"),
        "gate": gate,
        "promoted": job.status == "succeeded",
        "error": job.error,
    }


def when(iso: str | None) -> str:
    """An ISO time as '2026-12-02 07:05 UTC' with the full value on hover ('' for None)."""
    if not iso:
        return ""
    short = iso[:16].replace("T", " ")
    return f'<time datetime="{escape(iso)}" title="{escape(iso)}">{escape(short)} UTC</time>'


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else ""


def render_versions(versions: list[dict[str, Any]]) -> str:
    if not versions:
        return '<p class="muted" id="versions">No version recorded yet.</p>'
    head = ("<tr><th>version</th><th>registered</th><th>source</th><th>champion</th>"
            "<th>predictions (rollups)</th></tr>")  # fmt: skip
    rows = []
    for v in versions:
        since = f"{escape(v['became_champion'])} {when(v['champion_since'])}" if v["champion_since"] else ""
        role = "<strong>champion</strong>" + (f" ({since})" if since else "") if v["champion"] else ""
        if not v["champion"] and since:
            role = f'<span class="muted">was: {since}</span>'
        rows.append(
            f'<tr class="version" data-version="{escape(v["version"])}"><td>{escape(v["version"])}</td>'
            f"<td>{when(v['registered_at'])}</td><td>{escape(v['source'] or '')}</td>"
            f'<td>{role}</td><td class="predictions">{v["predictions"]}</td></tr>'
        )
    return f'<table id="versions">{head}{"".join(rows)}</table>'


def render_retrains(jobs: list[dict[str, Any]]) -> str:
    if not jobs:
        return '<p class="muted" id="retrains">No retrain yet.</p>'
    head = ("<tr><th>job</th><th>status</th><th>trigger</th><th>created</th><th>finished</th>"
            "<th>champion &rarr; challenger</th><th>gate</th><th>promoted</th></tr>")  # fmt: skip
    rows = []
    for j in jobs:
        gate = ""
        if j["metric"]:
            verdict = j["gate"] or ""
            gate = (f"{escape(verdict)} {escape(j['metric'])} {_score(j['challenger_score'])} vs "
                    f"{_score(j['champion_score'])}")  # fmt: skip
        elif j["error"]:
            gate = f'<span class="muted">{escape(j["error"][:200])}</span>'
        rows.append(
            f'<tr class="retrain" data-job-id="{j["id"]}" data-status="{escape(j["status"])}">'
            f'<td><a href="/v1/retrain/jobs/{j["id"]}">{j["id"]}</a></td>'
            f'<td class="job-status">{escape(j["status"])}</td><td>{escape(j["trigger"])}</td>'
            f"<td>{when(j['created_at'])}</td><td>{when(j['finished_at'])}</td>"
            f"<td>{escape(j['champion_version'] or '?')} &rarr; {escape(j['result_version'] or '')}</td>"
            f'<td class="gate">{gate}</td><td class="promoted">{"yes" if j["promoted"] else "no"}</td></tr>'
        )
    return f'<table id="retrains">{head}{"".join(rows)}</table>'


def model_href(name: str) -> str:
    """The model's dashboard page (a name may hold spaces and other characters a path must escape)."""
    return f"/dashboard/models/{quote(name, safe='')}"
