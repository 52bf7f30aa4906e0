"""What one API process holds: settings, engine, the model holder, the batcher and the log writer; and
the one type of the MLflow registry the service talks to.

`models` is the one truth of which models this process serves and watches: the configured ones plus the
ones watched at run time (`watched_models`), re-read by `sync_watched` on every champion poll interval
and right after a PUT / DELETE of /v1/models/{name}/watch. The mapping is replaced, never mutated, so a
reader in another thread (the scheduler) always sees one whole list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from service.config import Settings
from service.model_settings import ModelSet
from service.serving import fleet, watched
from service.serving.batcher import MicroBatcher
from service.serving.fleet import ModelSlot, UnknownModel
from service.serving.holder import LoadedModel, ModelHolder
from service.serving.log_writer import PredictionLogWriter
from service.serving.scoring import Scorer

if TYPE_CHECKING:  # MLflow loads only where a registry is made, not for every import of the runtime
    from retrain.registry import Registry

log = logging.getLogger("driftloop.serving")


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
    # builds the slot of a model watched at run time; None: the configured models only
    make_slot: Callable[[str], ModelSlot] | None = None
    # whether a registered model exists in the registry (the watch API refuses other names)
    model_exists: Callable[[str], bool] | None = None
    _sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _retiring: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _retired: list[ModelSlot] = field(default_factory=list, repr=False)
    # one Scorer per served slot, built on first use: the hot path builds none per request
    _scorers: dict[ModelSlot, Scorer] = field(default_factory=dict, repr=False)

    @property
    def static_names(self) -> tuple[str, ...]:
        """The configured models (DRIFTLOOP_MODEL_NAME, DRIFTLOOP_MODELS, the models file)."""
        return self.model_set.names if self.model_set is not None else (self.holder.name,)

    async def sync_watched(self) -> fleet.Reconciled:
        """Serve exactly the configured models plus the ones in `watched_models`: start the added ones
        (loading their champion), retire the removed ones. A database that cannot be read keeps the list."""
        if self.make_slot is None:
            return fleet.Reconciled(self.models)
        async with self._sync_lock:
            names = watched.desired(
                self.static_names, await asyncio.to_thread(watched.watched_names, self.engine)
            )
            done = await fleet.reconcile(self.models, names, self.make_slot)
            self.models = done.slots
            served = set(done.slots.values())
            self._scorers = {s: c for s, c in self._scorers.items() if s in served}
        if done.added or done.retired:
            log.info("watched models now %s (added %s, removed %s)", ", ".join(names),
                     list(done.added), [s.name for s in done.retired])  # fmt: skip
        if done.retired:
            self._retired.extend(done.retired)
            task = asyncio.create_task(self._retire(done.retired), name="retire-models")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return done

    async def _retire(self, slots: tuple[ModelSlot, ...]) -> None:
        try:
            await fleet.retire(slots)
        finally:
            self._retired = [s for s in self._retired if s not in slots]

    async def watch_forever(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.sync_watched()
            except Exception as exc:  # the database is down: serve what is served, retry next interval
                log.warning("re-reading the watched models failed: %s: %s", exc.__class__.__name__, exc)

    async def stop_models(self) -> None:
        """Stop every slot, the ones still retiring too (shutdown does not wait out their grace)."""
        retiring, slots = list(self._retiring), [*self.models.values(), *self._retired]
        for task in retiring:
            task.cancel()
        await asyncio.gather(*retiring, return_exceptions=True)
        await fleet.stop(slots)

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

    def serves(self, name: str) -> bool:
        return name in self.models if self.models else name == self.holder.name

    def scorer_for(self, name: str) -> Scorer:
        return self._scorer_of(self.slot(name))

    def settings_for(self, name: str) -> Settings:
        """The global settings with the model's overrides from DRIFTLOOP_MODELS_FILE (a model watched at
        run time has no entry there: the global settings)."""
        if self.model_set is None or name not in self.model_set.names:
            self.slot(name)  # unknown -> UnknownModel
            return self.settings.model_copy(update={"model_name": name})
        return self.model_set.settings_for(self.settings, name)

    @property
    def scorer(self) -> Scorer:
        return self._scorer_of(ModelSlot(self.holder, self.batcher))

    def _scorer_of(self, slot: ModelSlot) -> Scorer:
        found = self._scorers.get(slot)
        if found is None:
            found = self._scorers[slot] = Scorer(
                slot.holder,
                slot.batcher,
                self.writer,
                self.settings.max_batch_rows,
                self.settings.max_abs_feature,
            )
        return found


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
        return registry.champion_version(name)

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
