"""Several registered models behind one fake registry (each with its own champion and estimators)."""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from service.serving.holder import LoadedModel
from tests.support.core import FakeRegistry


class FakeRegistries:
    """name -> FakeRegistry; `resolve` / `fetch` dispatch on the model name like MLflow's registry."""

    def __init__(self, models: dict[str, tuple[dict[str, Pipeline], str | None]]) -> None:
        self.models = {name: FakeRegistry(name, est, champion) for name, (est, champion) in models.items()}

    def __getitem__(self, name: str) -> FakeRegistry:
        return self.models[name]

    def resolve(self, name: str) -> str | None:
        if name not in self.models:
            raise LookupError(f"registered model {name!r} not found")
        return self.models[name].resolve(name)

    def fetch(self, name: str, version: str) -> LoadedModel:
        return self.models[name].fetch(name, version)

    def has_model(self, name: str) -> bool:
        return name in self.models
