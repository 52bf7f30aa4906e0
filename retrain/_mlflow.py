"""Private MLflow plumbing for :mod:`retrain.registry`: URI handling, error translation, serialization.

Kept apart so that ``registry.py`` reads as the promotion protocol and nothing else.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import mlflow
from mlflow.exceptions import MlflowException

from retrain.errors import ModelNotFound, RegistryUnavailable, RetrainError

P = ParamSpec("P")
R = TypeVar("R")

# MLflow's fluent API (start_run, log_model, load_model with models:/ URIs) reads one process-wide
# tracking URI. Every fluent call sets it under this lock, so two Registry objects with different stores
# (the tests do this) never write into each other's store.
_FLUENT_LOCK = threading.RLock()

# Error codes of a failed HTTP round trip or a 5xx answer: the server is down, not the request wrong.
_UNAVAILABLE_CODES = frozenset({"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"})
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})


@contextmanager
def fluent(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``tracking_uri`` for the duration of the block (serialized)."""
    with _FLUENT_LOCK:
        mlflow.set_tracking_uri(tracking_uri)
        # the registry URI follows the tracking URI unless someone pinned it (MLFLOW_REGISTRY_URI); only
        # then pin it ourselves, so user code calling mlflow.set_tracking_uri later still gets a matching one
        if mlflow.get_registry_uri() != tracking_uri:
            mlflow.set_registry_uri(tracking_uri)
        yield


def default_artifact_location(tracking_uri: str) -> str | None:
    """A folder next to an SQLite store, so artifacts never land in the current working directory.

    Remote servers (http/https) choose their own location (``--artifacts-destination``), so None.

    Examples
    --------
    >>> default_artifact_location("sqlite:////srv/data/mlflow.db")
    'file:///srv/data/mlartifacts'
    >>> default_artifact_location("http://127.0.0.1:5000") is None
    True
    """
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    db_path = Path(tracking_uri[len(prefix) :]).resolve()
    return (db_path.parent / "mlartifacts").as_uri()


def as_artifact_uri(location: str) -> str:
    """Turn a plain local path into a ``file://`` URI; leave URIs (``s3://``, ``file://`` ...) alone."""
    if "://" in location:
        return location
    return Path(location).resolve().as_uri()


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the tracking store could not be reached (as opposed to a bad request)."""
    if isinstance(exc, MlflowException):
        return exc.error_code in _UNAVAILABLE_CODES and "API request to" in exc.message
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    # requests and sqlalchemy are MLflow's transports; matched by name so retrain imports neither.
    names = {cls.__module__.split(".")[0] + "." + cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"requests.ConnectionError", "requests.Timeout", "sqlalchemy.OperationalError"})


def is_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` is MLflow saying the model, version or alias does not exist."""
    return isinstance(exc, MlflowException) and exc.error_code in _NOT_FOUND_CODES


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Re-raise transport failures as :class:`RegistryUnavailable` and unknown names as ModelNotFound."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except RetrainError:
            raise
        except Exception as exc:
            uri = getattr(args[0], "tracking_uri", "?") if args else "?"
            if is_unavailable(exc):
                raise RegistryUnavailable(f"MLflow at {uri} is unreachable: {exc}") from exc
            if is_not_found(exc):
                raise ModelNotFound(f"not found in the MLflow registry at {uri}: {exc}") from exc
            raise

    return wrapper


def serialization_for(estimator: Any) -> tuple[str, list[str] | None]:
    """Pick MLflow's serialization format and the skops trusted types for ``estimator``.

    MLflow 3.17 saves with skops and refuses on load any type outside skops' default allow-list (tree
    models hold ``sklearn.tree._tree.Tree``). The model is being logged by its owner, so every type found
    in its own dump is trusted. Estimators skops cannot dump at all (lambdas, local classes) fall back
    to cloudpickle rather than failing the retrain.
    """
    import skops.io

    try:
        data = skops.io.dumps(estimator)
    except Exception:
        return "cloudpickle", None
    return "skops", list(skops.io.get_untrusted_types(data=data))
