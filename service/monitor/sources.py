"""Where the monitor learns the champion version and finds reference data: the MLflow registry or a
serving process's model holder."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from service.monitor.runner import Monitor
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


def serving_monitor(runtime: Runtime) -> Monitor:
    """The monitor of a serving process: its champion is the version it answers with, its references
    come from the registry (none without one)."""
    registry = runtime.registry
    return Monitor(
        runtime.settings,
        runtime.engine,
        champion_version=holder_champion(runtime.holder),
        references=RegistryReferences(registry) if registry is not None else None,
    )
