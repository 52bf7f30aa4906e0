"""The served model: alias polling with atomic hot swap, and the micro-batcher."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from service.serving.compiled import Compiled, compile_columns
from service.serving.final import NativeFinal, native_final
from service.serving.labels import ProbaLabels, proba_labels
from service.serving.records import Column

log = logging.getLogger("driftloop.serving")


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    estimator: Any
    columns: tuple[Column, ...]
    classes: tuple[Any, ...] | None
    loaded_at: float = field(default_factory=time.time)

    @cached_property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @cached_property
    def scores_probabilities(self) -> bool:
        return self.classes is not None and hasattr(self.estimator, "predict_proba")

    @cached_property
    def probability_keys(self) -> list[str]:
        return [str(c) for c in self.classes or ()]

    @cached_property
    def stages(self) -> tuple[list[Any], Any]:
        """(transform steps, final estimator): a Pipeline's steps run once for predict *and* predict_proba,
        exactly as `Pipeline.predict` runs them (sklearn's per-call overhead dominates small batches)."""
        est = self.estimator
        if isinstance(est, Pipeline) and len(est.steps) > 1 and est.steps[-1][1] not in (None, "passthrough"):
            return [s for _, s in est.steps[:-1] if s not in (None, "passthrough")], est.steps[-1][1]
        return [], est

    @cached_property
    def compiled(self) -> Compiled | None:
        """The first transform step as plain numpy work, when it reproduces scikit-learn exactly
        (service/serving/compiled.py); computed at load, off the event loop."""
        transforms, final = self.stages
        if not transforms:
            return None
        rest = [*transforms[1:], final]
        return compile_columns(transforms[0], self.columns, _Chain(rest))

    @cached_property
    def labels(self) -> ProbaLabels | None:
        """Labels from the predict_proba call, when exact for this classifier (service/serving/labels.py);
        computed at load, off the event loop."""
        if self.classes is None:
            return None
        return proba_labels(self.stages[1])

    @cached_property
    def native_proba(self) -> NativeFinal | None:
        """The final step's predict_proba without scikit-learn's validation, when exact (final.py)."""
        return native_final(self.stages[1], "predict_proba") if self.classes is not None else None

    @cached_property
    def native_predict(self) -> NativeFinal | None:
        return native_final(self.stages[1], "predict") if self.classes is None else None

    def prepare(self) -> None:
        """Run the load-time checks (compiled transform, labels, native final step): in a worker thread."""
        _ = (self.compiled, self.labels, self.native_proba, self.native_predict)


class _Chain:
    """The steps after the compiled one, as one `predict` (for the load-time check)."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps = steps

    def predict(self, data: Any) -> Any:
        for step in self.steps[:-1]:
            data = step.transform(data)
        return self.steps[-1].predict(data)


@dataclass(frozen=True)
class BatchOutput:
    model: LoadedModel
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None


def _to_python(values: np.ndarray) -> list[Any]:
    values_list: list[Any] = values.tolist()  # numpy scalars -> JSON-friendly Python values
    return values_list


def _call(native: NativeFinal | None, final: Any, method: str, data: Any) -> np.ndarray:
    if native is not None and native.takes(data):
        return native.call(data)
    return np.asarray(getattr(final, method)(data))


def _probability_dicts(keys: list[str], proba: np.ndarray) -> list[dict[str, float]]:
    rounded = proba.round(6).tolist()
    if len(keys) == 2:  # most classifiers: a literal is cheaper than dict(zip()) per row
        first, second = keys
        return [{first: a, second: b} for a, b in rounded]
    return [dict(zip(keys, row, strict=True)) for row in rounded]


def predict_rows(model: LoadedModel, rows: list[dict[str, Any]]) -> BatchOutput:
    transforms, final = model.stages
    compiled = model.compiled
    data: Any = compiled.transform(rows) if compiled is not None else None
    if data is None:
        data = pd.DataFrame.from_records(rows, columns=model.feature_names)
    else:
        transforms = transforms[1:]
    for step in transforms:
        data = step.transform(data)
    probabilities = None
    if model.scores_probabilities:
        proba = np.asarray(_call(model.native_proba, final, "predict_proba", data), dtype=float)
        labels = model.labels
        predictions = labels.labels(proba, data) if labels else _to_python(np.asarray(final.predict(data)))
        probabilities = _probability_dicts(model.probability_keys, proba)
    else:
        predictions = _to_python(_call(model.native_predict, final, "predict", data))
    return BatchOutput(model=model, predictions=predictions, probabilities=probabilities)


def _freeze_heap() -> None:
    """Move what is alive now (imports of MLflow, pandas, sklearn, the model) out of the collector's reach.

    Without this a full collection walks that heap every few seconds under load: 0.2-0.8 s pauses that
    were the whole p99 of the serving benchmark. One collection here (startup, model swap) replaces them.
    """
    gc.collect()
    gc.freeze()


class ModelUnavailable(RuntimeError):
    """No champion is loaded yet."""


class PredictionFailed(ValueError):
    """The model raised on this input (e.g. a value its encoder cannot handle)."""


class ModelHolder:
    """Holds the loaded champion; `refresh()` swaps in a new version between batches.

    `loader(name)` returns the champion's version string or None, and `fetch(name, version)` the
    LoadedModel; both run in a worker thread because MLflow calls block.
    """

    def __init__(
        self,
        name: str,
        *,
        resolve: Callable[[str], str | None],
        fetch: Callable[[str, str], LoadedModel],
        poll_seconds: float,
    ) -> None:
        self.name = name
        self._resolve = resolve
        self._fetch = fetch
        self._poll_seconds = poll_seconds
        self._current: LoadedModel | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.last_poll: float | None = None

    @property
    def current(self) -> LoadedModel:
        model = self._current
        if model is None:
            raise ModelUnavailable(
                f"no champion model loaded for '{self.name}'"
                + (f" ({self.last_error})" if self.last_error else "")
                + ": register a version with alias 'champion' (or run `driftloop bootstrap`)"
            )
        return model

    @property
    def loaded(self) -> bool:
        return self._current is not None

    def set(self, model: LoadedModel) -> None:
        self._current = model

    async def refresh(self) -> bool:
        """Re-resolve `@champion`; returns True when a different version was swapped in."""
        try:
            version = await asyncio.to_thread(self._resolve, self.name)
            self.last_poll = time.time()
            if version is None:
                self.last_error = "the registry has no 'champion' alias for this model"
                return False
            if self._current is not None and self._current.version == version:
                self.last_error = None
                return False
            model = await asyncio.to_thread(self._fetch, self.name, version)
            await asyncio.to_thread(model.prepare)  # load-time checks, off the event loop
        except Exception as exc:  # registry down: keep serving what is loaded
            self.last_error = f"registry unreachable: {exc.__class__.__name__}: {exc}"[:500]
            log.warning("champion refresh of %s failed: %s", self.name, self.last_error)
            return False
        previous = self._current.version if self._current else None
        self._current = model  # atomic: batches read `current` once
        _freeze_heap()
        self.last_error = None
        log.info("serving %s version %s (was %s)", self.name, version, previous)
        return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            await self.refresh()

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="champion-poller")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
