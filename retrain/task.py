"""The task (classification / regression) comes from the model, never from the label values.

Integer-valued regression targets (scikit-learn's diabetes data: ``151.0``, ``75.0`` ...) look like classes;
the estimator knows better. MLflow pyfunc wrappers and pipelines are unwrapped to the scikit-learn estimator;
a pyfunc with no scikit-learn estimator inside falls back to its signature's output type.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Literal

from sklearn.base import is_classifier, is_regressor

from retrain.errors import InvalidSetting

Task = Literal["classification", "regression"]
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
DEFAULT_METRIC: dict[str, str] = {"classification": "accuracy", "regression": "rmse"}
METRIC_SETTING = "DRIFTLOOP_PERFORMANCE_METRIC"
_CLASS_TYPES = frozenset({"integer", "long", "string", "boolean", "bool", "binary", "int32", "int64", "str"})
_NUMBER_TYPES = frozenset({"float", "double", "float32", "float64"})
_WRAPPED = ("model", "estimator", "pipeline", "sklearn_model", "_model")  # common attribute names


@dataclass(frozen=True)
class TaskInference:
    """The task and how it was found: ``source`` is ``estimator`` (sklearn tags of ``estimator_type``) or
    ``signature`` (the MLflow output type, ``is_fallback`` True)."""

    task: Task
    source: Literal["estimator", "signature"]
    estimator_type: str
    is_fallback: bool
    reason: str


def infer_task(model: Any) -> TaskInference:
    """Classification or regression, from the estimator's scikit-learn tags (pipelines and MLflow
    pyfunc wrappers unwrapped), else from the MLflow signature's output type.

    Raises
    ------
    InvalidSetting
        (a ValueError) when neither the estimator nor a signature tells.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> X, y = np.arange(10.0).reshape(-1, 1), np.arange(10.0) * 3  # integer-valued target
    >>> infer_task(LinearRegression().fit(X, y)).task
    'regression'
    """
    seen: set[int] = set()
    for candidate in _unwrapped(model, seen):
        task = _sklearn_task(candidate)
        if task is not None:
            name = type(candidate).__name__
            return TaskInference(task, "estimator", name, False, f"{name} is a scikit-learn {_noun(task)}")
    output_type = _signature_output_type(model)
    if output_type in _CLASS_TYPES or output_type in _NUMBER_TYPES:
        task = "classification" if output_type in _CLASS_TYPES else "regression"
        reason = (
            f"fallback: no scikit-learn estimator in {type(model).__name__}; the signature's output type "
            f"{output_type!r} means {task}"
        )
        return TaskInference(task, "signature", type(model).__name__, True, reason)
    raise InvalidSetting(
        f"cannot tell the task of {type(model).__name__}: it is not a scikit-learn classifier or regressor "
        f"and has no MLflow signature output type (found {output_type!r})"
    )


def default_metric(task: str) -> str:
    """The watched and retrain metric of a task: accuracy for classification, rmse for regression.

    Examples
    --------
    >>> default_metric("regression")
    'rmse'
    """
    _check_task(task)
    return DEFAULT_METRIC[task]


def validate_metric(metric: str | None, task: str, *, setting: str = METRIC_SETTING) -> str:
    """``metric`` if it fits ``task``, the task's default when empty/None; else a ValueError naming
    ``setting`` and the valid values.

    Examples
    --------
    >>> validate_metric(None, "regression")
    'rmse'
    >>> validate_metric("accuracy", "regression")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    retrain.errors.InvalidSetting: DRIFTLOOP_PERFORMANCE_METRIC='accuracy' ...; valid: rmse, mae, r2
    """
    _check_task(task)
    if not metric:
        return DEFAULT_METRIC[task]
    if metric not in TASK_METRICS[task]:
        valid = ", ".join(TASK_METRICS[task])
        raise InvalidSetting(f"{setting}={metric!r} does not fit a {task} model; valid: {valid}")
    return metric


def _check_task(task: str) -> None:
    if task not in TASK_METRICS:
        raise InvalidSetting(f"unknown task {task!r}; valid: {', '.join(TASK_METRICS)}")


def _noun(task: str) -> str:
    return "classifier" if task == "classification" else "regressor"


def _sklearn_task(obj: Any) -> Task | None:
    # sklearn >= 1.6 raises on objects without __sklearn_tags__ (duck-typed models)
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        if is_classifier(obj):
            return "classification"
        if is_regressor(obj):
            return "regression"
    return None


def _unwrapped(obj: Any, seen: set[int], depth: int = 0) -> list[Any]:
    """``obj`` and what it wraps: a pyfunc's raw or python model, a wrapper's ``model``-like attribute."""
    if obj is None or id(obj) in seen or depth > 4:
        return []
    seen.add(id(obj))
    inner: list[Any] = []
    for method in ("get_raw_model", "unwrap_python_model"):
        fn = getattr(obj, method, None)
        if callable(fn):
            with contextlib.suppress(Exception):  # these raise when the flavour does not apply
                inner.append(fn())
    impl = getattr(obj, "_model_impl", None)
    inner.extend(x for x in (impl, getattr(impl, "sklearn_model", None)) if x is not None)
    inner.extend(x for x in (getattr(obj, name, None) for name in _WRAPPED) if x is not None)
    found = [obj]
    for child in inner:
        found.extend(_unwrapped(child, seen, depth + 1))
    return found


def _signature_output_type(model: Any) -> str | None:
    with contextlib.suppress(Exception):  # no metadata, no signature, or a schema without types
        schema = model.metadata.get_output_schema()
        if schema is None:
            return None
        # ColSpec.type is a DataType enum (name "long", "double"); TensorSpec.type a numpy dtype ("int64")
        kind = schema.inputs[0].type
        return str(getattr(kind, "name", kind)).lower()
    return None
