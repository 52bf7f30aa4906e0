"""Where the monitor learns the champion version and finds reference data: the MLflow registry or a
serving process's model holder."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa

from service.config import Settings
from service.monitor.references import ReferenceSource
from service.monitor.runner import ChampionVersion, Monitor
from service.serving.fleet import UnknownModel
from service.serving.holder import ModelHolder

if TYPE_CHECKING:
    from retrain.registry import Registry
    from service.runtime import Runtime


class RegistryReferences:
    """The registry as a `ReferenceSource`: a version it does not know has no reference (None); an
    unreachable registry raises, so the check is retried instead of being stored as `no_reference`."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def load_reference(self, name: str, version: str) -> pd.DataFrame | None:
        from retrain.errors import ModelNotFound

        try:
            data = self.registry.load_reference(name, version)
        except ModelNotFound:
            return None
        return data if isinstance(data, pd.DataFrame) else None

    def input_columns(self, name: str, version: str) -> list[str]:
        """The signature's input columns: exactly the features a reference profiles."""
        return [c.name for c in self.registry.input_schema(name, version)]

    def task(self, name: str, version: str) -> str | None:
        from service.monitor.tasks import model_task

        return model_task(self.registry, name, version)

    def load_holdout(self, name: str, version: str) -> pd.DataFrame | None:
        """The version's labeled holdout (bootstrap and retrain log one), or None: what the label-free
        estimators are fitted on (service/monitor/estimators.py)."""
        from retrain.errors import ModelNotFound

        try:
            data = self.registry.load_holdout(name, version)
        except ModelNotFound:
            return None
        return data if isinstance(data, pd.DataFrame) else None

    def load_estimator(self, name: str, version: str) -> object:
        """The version's scikit-learn estimator (`predict_proba` works)."""
        return self.registry.load_estimator(name, version)

    def version_metrics(self, name: str, version: str) -> dict[str, float]:
        run_id = self.registry.get_version(name, version).run_id
        metrics: dict[str, float] = self.registry.run_metrics(run_id) if run_id else {}
        return metrics


def registry_champion(registry: Registry) -> Callable[[str], str | None]:
    def champion_version(name: str) -> str | None:
        info = registry.champion(name)
        return str(info.version) if info is not None else None

    return champion_version


def holder_champion(holder: ModelHolder) -> Callable[[str], str | None]:
    """The version a serving process is answering with (it polls the champion alias itself)."""

    def champion_version(name: str) -> str | None:
        if holder.loaded and holder.current.name == name:
            return holder.current.version
        return None

    return champion_version


def serving_champion(runtime: Runtime) -> ChampionVersion:
    """The version this process answers with for each model (its slot's holder, looked up per call: the
    watch API adds and removes models at run time); None for a model it does not serve."""

    def champion_version(name: str) -> str | None:
        try:
            holder = runtime.slot(name).holder
        except UnknownModel:
            return None
        return holder_champion(holder)(name)

    return champion_version


def serving_monitor(runtime: Runtime, name: str | None = None) -> Monitor:
    """The monitor of one model (default: the default model) in a serving process: its champion is the
    version the process answers with, its references come from the registry (none without one)."""
    registry = runtime.registry
    settings = runtime.settings_for(name) if name is not None else runtime.settings
    return Monitor(
        settings,
        runtime.engine,
        champion_version=serving_champion(runtime),
        references=RegistryReferences(registry) if registry is not None else None,
    )


class WatchedModels:
    """The models a scheduler watches, asked at every tick (the watch API adds and removes models at run
    time, so the list is never cached), each with its own settings and one `Monitor` kept across ticks
    (its window frontiers make a tick cheap); a model's monitor is rebuilt when its settings change."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        names: Callable[[], Sequence[str]],
        settings_for: Callable[[str], Settings],
        champion_version: ChampionVersion | None = None,
        references: ReferenceSource | None = None,
    ) -> None:
        self.engine = engine
        self._names = names
        self._settings_for = settings_for
        self.champion_version = champion_version
        self.references = references
        self._monitors: dict[str, Monitor] = {}
        self._lock = threading.Lock()  # jobs of several models ask from their own threads

    def names(self) -> tuple[str, ...]:
        """The watched models now; an unwatched model's monitor (and its state) is dropped."""
        found = tuple(self._names())
        with self._lock:
            for gone in set(self._monitors) - set(found):
                del self._monitors[gone]
        return found

    def settings_for(self, name: str) -> Settings:
        """The model's settings (`UnknownModel` once it is not watched any more)."""
        return self._settings_for(name)

    def monitor(self, settings: Settings) -> Monitor:
        name = settings.model_name
        with self._lock:
            found = self._monitors.get(name)
            if found is None or found.settings != settings:
                found = Monitor(
                    settings, self.engine, champion_version=self.champion_version, references=self.references
                )
                self._monitors[name] = found
            return found


def serving_models(runtime: Runtime) -> WatchedModels:
    """Every model a serving process serves (`runtime.model_names`, read at each tick)."""
    registry = runtime.registry
    return WatchedModels(
        runtime.engine,
        names=lambda: runtime.model_names,
        settings_for=runtime.settings_for,
        champion_version=serving_champion(runtime),
        references=RegistryReferences(registry) if registry is not None else None,
    )


def registry_models(settings: Settings, engine: sa.Engine, registry: Registry) -> WatchedModels:
    """The models of `driftloop scheduler` (no serving process): the same list as the API processes'
    (the configured ones of `load_models`, then those watched at run time), read at every tick; champions
    and references from the registry."""
    from service.model_settings import load_models
    from service.serving.watched import desired, watched_names

    model_set = load_models(settings)

    def names() -> tuple[str, ...]:
        return desired(model_set.names, watched_names(engine))

    def settings_for(name: str) -> Settings:
        if name in model_set.names:
            return model_set.settings_for(settings, name)
        return settings.model_copy(update={"model_name": name})  # watched at run time: global settings

    return WatchedModels(
        engine,
        names=names,
        settings_for=settings_for,
        champion_version=registry_champion(registry),
        references=RegistryReferences(registry),
    )
