"""What one API process holds: settings, engine, the model holder, the batcher and the log writer; and
the one type of the MLflow registry the service talks to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import sqlalchemy as sa

from service.config import Settings
from service.model_settings import ModelSet
from service.serving.batcher import MicroBatcher
from service.serving.fleet import ModelSlot, UnknownModel
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
    # every served model by name, the default one (`holder`, `batcher`) included; per-model settings
    models: dict[str, ModelSlot] = field(default_factory=dict)
    model_set: ModelSet | None = None

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self.models) or (self.holder.name,)

    def slot(self, name: str) -> ModelSlot:
        """The named model's holder and batcher, or `UnknownModel` naming the served ones."""
        found = self.models.get(name)
        if found is None:
            if not self.models and name == self.holder.name:
                return ModelSlot(self.holder, self.batcher)
            raise UnknownModel(name, self.model_names)
        return found

    def scorer_for(self, name: str) -> Scorer:
        found = self.slot(name)
        return replace(self.scorer, holder=found.holder, batcher=found.batcher)

    def settings_for(self, name: str) -> Settings:
        """The global settings with the model's overrides from DRIFTLOOP_MODELS_FILE."""
        if self.model_set is None:
            self.slot(name)  # unknown -> UnknownModel
            return self.settings.model_copy(update={"model_name": name})
        return self.model_set.settings_for(self.settings, name)

    @property
    def scorer(self) -> Scorer:
        return Scorer(
            self.holder,
            self.batcher,
            self.writer,
            self.settings.max_batch_rows,
            self.settings.max_abs_feature,
        )


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
