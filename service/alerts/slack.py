"""The `slack` format: a readable `{"text": ...}` message for a Slack incoming webhook."""

from __future__ import annotations

from typing import Any

_ICONS = {
    "drift.detected": ":warning:",
    "performance.degraded": ":chart_with_downwards_trend:",
    "retrain.failed": ":x:",
    "model.rejected": ":no_entry_sign:",
    "model.rolled_back": ":rewind:",
    "drift.resolved": ":white_check_mark:",
    "performance.recovered": ":white_check_mark:",
    "performance.estimated_degraded": ":crystal_ball:",  # an early warning, before labels
    "performance.estimated_recovered": ":white_check_mark:",
    "retrain.succeeded": ":white_check_mark:",
    "model.promoted": ":rocket:",
    "automation.paused": ":double_vertical_bar:",
    "automation.resumed": ":arrow_forward:",
}


def _escape(text: str) -> str:
    # Slack's mrkdwn reserves these three characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(payload: dict[str, Any]) -> str:
    """One message: icon, type, model and version, the summary, then the links.

    >>> print(slack_text({"type": "drift.detected", "model": {"name": "m", "version": "3"},
    ...                   "summary": "x > 0.1", "links": {"report": "http://h/r"}}))
    :warning: *drift.detected* · m v3
    x &gt; 0.1
    <http://h/r|report>
    """
    model = payload.get("model") or {}
    version = f" v{model['version']}" if model.get("version") else ""
    icon = _ICONS.get(str(payload.get("type")), ":bell:")
    lines = [f"{icon} *{_escape(str(payload.get('type')))}* · {_escape(str(model.get('name', '')))}{version}"]
    if payload.get("summary"):
        lines.append(_escape(str(payload["summary"])))
    links = payload.get("links") or {}
    if links:
        lines.append(" · ".join(f"<{url}|{_escape(str(name))}>" for name, url in links.items()))
    return "\n".join(lines)
