"""The (endpoint, model) labels of a request's metrics, read from its path without routing it."""

from __future__ import annotations

import re
from typing import Any

from service.metrics import NO_MODEL

# path -> (endpoint label, served by the default model)
_FIXED = {
    "/v1/predict": ("predict", True),
    "/invocations": ("invocations", True),
    "/v1/feedback": ("feedback", False),
}
_NAMED = re.compile(r"^/(?:v1/models/([^/]+)/predict|models/([^/]+)/invocations)$")


def _runtime(scope: dict[str, Any]) -> Any:
    return getattr(getattr(scope.get("app"), "state", None), "runtime", None)


def request_labels(scope: dict[str, Any]) -> tuple[str, str]:
    """(endpoint, model). A name the deployment does not serve is labelled NO_MODEL, so requests for
    made-up names cannot grow the number of series."""
    path = scope["path"]
    fixed = _FIXED.get(path)
    if fixed is not None:
        runtime = _runtime(scope)
        return fixed[0], runtime.holder.name if fixed[1] and runtime is not None else NO_MODEL
    if path.startswith(("/v1/models/", "/models/")) and (m := _NAMED.match(path)):
        name = m.group(1) or m.group(2)
        runtime = _runtime(scope)
        served = runtime is not None and runtime.serves(name)
        return ("predict" if m.group(1) else "invocations"), name if served else NO_MODEL
    return "other", NO_MODEL
