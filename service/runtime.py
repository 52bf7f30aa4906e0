"""What one API process holds: settings, engine, the model holder, the batcher and the log writer; and
the one type of the MLflow registry the service talks to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from service.config import Settings
from service.serving.batcher import MicroBatcher
from service.serving.holder import LoadedModel, ModelHolder
from service.serving.log_writer import PredictionLogWriter
from service.serving.scoring import Scorer

if TYPE_CHECKING:  # MLflow loads only where a registry is made, not for every import of the runtime
    from retrain.registry import Registry


@dataclass
class Runtime:
    settings: Settings
    engine: sa.Engine
    holder: ModelHolder
    batcher: MicroBatcher
    writer: PredictionLogWriter
    registry: Registry | None = None  # None when serving from an injected loader (tests)

    @property
    def scorer(self) -> Scorer:
        return Scorer(self.holder, self.batcher, self.writer, self.settings.max_batch_rows)


Resolve = Callable[[str], "str | None"]
Fetch = Callable[[str, str], LoadedModel]


def make_registry(settings: Settings) -> Registry:
    """The MLflow registry of the settings. A tracking server stores artifacts itself (--serve-artifacts);
    only the embedded SQLite store keeps them in the local data folder."""
    from retrain.registry import Registry

    uri = settings.resolved_tracking_uri
    if uri.startswith(("http://", "https://")):
        return Registry(uri)
    settings.artifact_root.mkdir(parents=True, exist_ok=True)
    return Registry(uri, artifact_location=settings.artifact_root.resolve().as_uri())


def registry_loader(registry: Registry) -> tuple[Resolve, Fetch]:
    """(resolve, fetch) callables backed by the MLflow registry."""
    from service.serving.records import Column

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
