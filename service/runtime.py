"""What one API process holds: settings, engine, the model holder, the batcher and the log writer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from service.config import Settings
from service.logging_writer import PredictionLogWriter
from service.serving import LoadedModel, MicroBatcher, ModelHolder


@dataclass
class Runtime:
    settings: Settings
    engine: sa.Engine
    holder: ModelHolder
    batcher: MicroBatcher
    writer: PredictionLogWriter
    registry: Any = None  # retrain.registry.Registry; None when serving from an injected loader


def make_registry(settings: Settings) -> Any:
    """The MLflow registry of the settings. A tracking server stores artifacts itself (--serve-artifacts);
    only the embedded SQLite store keeps them in the local data folder."""
    from retrain.registry import Registry

    uri = settings.resolved_tracking_uri
    if uri.startswith(("http://", "https://")):
        return Registry(uri)
    settings.artifact_root.mkdir(parents=True, exist_ok=True)
    return Registry(uri, artifact_location=settings.artifact_root.resolve().as_uri())


def registry_loader(registry: Any) -> tuple[Any, Any]:
    """(resolve, fetch) callables backed by the MLflow registry."""
    from service.schema import Column

    def resolve(name: str) -> str | None:
        info = registry.champion(name)
        return info.version if info else None

    def fetch(name: str, version: str) -> LoadedModel:
        estimator = registry.load_estimator(name, version)
        columns = tuple(Column(c.name, c.type, c.required) for c in registry.input_schema(name, version))
        classes = getattr(estimator, "classes_", None)
        return LoadedModel(
            name=name,
            version=version,
            estimator=estimator,
            columns=columns,
            classes=tuple(classes.tolist()) if classes is not None else None,
        )

    return resolve, fetch
