"""The task of a model version (classification / regression) and the metric watched for it.

The task comes from the model (`retrain/task.py`: scikit-learn's estimator type, else the signature's
output type), never from label values: integer-valued regression targets look like classes. It is inferred
once per version and stored with the reference; the watched metric follows it unless
`DRIFTLOOP_PERFORMANCE_METRIC` names one, which must fit the task (an `InvalidSetting` naming the setting).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from retrain.errors import InvalidSetting
from retrain.task import infer_task, validate_metric
from service.config import Settings

if TYPE_CHECKING:
    from retrain.registry import Registry

log = logging.getLogger("driftloop.monitor")

__all__ = ["InvalidSetting", "model_task", "watched_metric"]


def model_task(registry: Registry, name: str, version: str) -> str | None:
    """The version's task from its scikit-learn estimator (pipelines unwrapped); None when the model
    does not load as one or tells nothing."""
    try:
        model = registry.load_estimator(name, version)
    except Exception as exc:
        log.warning("task of %s v%s unknown: not a scikit-learn model (%s)", name, version, exc)
        return None
    try:
        return infer_task(model).task
    except InvalidSetting as exc:
        log.warning("task of %s v%s unknown: %s", name, version, exc)
        return None


def watched_metric(settings: Settings, task: str) -> str:
    """`performance_metric` when it fits `task`, the task's default when empty; else InvalidSetting."""
    return validate_metric(settings.performance_metric or None, task)


def metric_setting_error(settings: Settings, registry: Registry) -> str | None:
    """At start: why `DRIFTLOOP_PERFORMANCE_METRIC` does not fit the champion's task, or None (also when
    the setting is empty or the champion cannot be read: the checks then say it per window)."""
    if not settings.performance_metric:
        return None
    try:
        champion = registry.champion(settings.model_name)
    except Exception as exc:
        log.warning("metric setting not checked at start: registry unavailable (%s)", exc)
        return None
    task = model_task(registry, settings.model_name, champion.version) if champion else None
    if task is None:
        return None
    try:
        watched_metric(settings, task)
    except InvalidSetting as exc:
        return f"{exc} (the champion, version {champion.version if champion else '?'}, is a {task} model)"
    return None
