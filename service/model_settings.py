"""Which registered models one deployment serves and watches, and the settings of each.

`DRIFTLOOP_MODEL_NAME` is the default model (the one `/v1/predict` and `/invocations` serve);
`DRIFTLOOP_MODELS` adds more (comma-separated); `DRIFTLOOP_MODELS_FILE` is an optional TOML file whose
`[models.<name>]` tables override, for that model, the settings in `PER_MODEL` (the keys are the setting
names); a model listed there is served too. A model without an entry uses the global settings.

```toml
[models.churn]
window_rows = 500
breach_k = 3

[models.fraud]
performance_metric = "f1"
retrain_daily_budget = 2
```

The file is read and checked once, when the app is built: an unknown key or a bad value is a
`ModelsFileError` naming the file, the model and the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from service.config import Settings

# The settings a model may override: what is watched, how a breach is decided, how a retrain runs.
# Serving, storage, scheduling and access settings are the process's, shared by every model.
PER_MODEL = frozenset(
    {
        "window_kind",
        "window_rows",
        "window_seconds",
        "min_window_rows",
        "performance_window_rows",
        "window_backlog",
        "drift_correction",
        "drift_share",
        "breach_k",
        "breach_m",
        "performance_metric",
        "performance_tolerance",
        "performance_alpha",
        "performance_min_effect",
        "target_column",
        "estimated_performance",
        "estimated_min_effect",
        "estimated_alpha",
        "retrain_on_episode",
        "retrain_on_estimated",
        "retrain_cooldown_seconds",
        "retrain_daily_budget",
        "retrain_data_policy",
        "retrain_window_rows",
        "retrain_holdout_fraction",
        "retrain_min_rows",
        "retrain_margin",
        "retrain_recipe",
        "automation_paused",  # a configured pause of the model's automatic loop
        "automation_hold_seconds",  # how long a rollback pauses the model's automatic loop
        # how long the model's logged predictions are kept (service/lifecycle/retention.py)
        "retention_days",
        "labeled_retention_days",
    }
)
# A name is one URL path segment (/v1/models/{name}/predict) and one item of a comma-separated list.
_NAME = re.compile(r"^[^/,\s\x00-\x1f](?:[^/,\x00-\x1f]{0,254}[^/,\s\x00-\x1f])?$")
# A name given to the watch API or a webhook's filter: the rule above, and no ':' (MLflow refuses it)
NAME_PATTERN = r"^[^/,:\s\x00-\x1f](?:[^/,:\x00-\x1f]{0,254}[^/,:\s\x00-\x1f])?$"


class ModelsFileError(ValueError):
    """The models configuration is invalid; the message names the file, model and key."""


@dataclass(frozen=True)
class ModelSet:
    default: str
    names: tuple[str, ...]  # the default first, then in the order configured
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def settings_for(self, base: Settings, name: str) -> Settings:
        """`base` with the model's overrides applied and `model_name` set to it (values already checked)."""
        if name not in self.names:
            raise KeyError(name)
        return base.for_model(name, self.overrides.get(name, {}))


def _check_name(name: str, where: str) -> str:
    if not _NAME.match(name):
        raise ModelsFileError(
            f"{where}: model name {name!r} must be 1-256 characters without '/', ',' or control "
            "characters, and may not start or end with a space"
        )
    return name


def _validated(path: Path, model: str, key: str, value: Any) -> Any:
    info = Settings.model_fields[key]
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[info.annotation, info])  # type: ignore[arg-type]
        return adapter.validate_python(value)
    except ValidationError as exc:
        reason = "; ".join(e["msg"] for e in exc.errors())
        raise ModelsFileError(f"{path}: [models.{model}] {key} = {value!r} is invalid: {reason}") from None


def _read_file(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelsFileError(f"DRIFTLOOP_MODELS_FILE={path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelsFileError(f"{path}: not valid TOML: {exc}") from None
    if extra := sorted(set(data) - {"models"}):
        raise ModelsFileError(
            f"{path}: unknown top-level key {extra[0]!r}: put each model under [models.<name>]"
        )
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ModelsFileError(f"{path}: 'models' must be a table of [models.<name>] tables")
    out: dict[str, dict[str, Any]] = {}
    for model, entry in models.items():
        _check_name(model, str(path))
        if not isinstance(entry, dict):
            raise ModelsFileError(f"{path}: models.{model} must be a table of settings")
        for key in entry:
            if key not in PER_MODEL:
                close = difflib.get_close_matches(key, sorted(PER_MODEL), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = "a process-wide setting" if key in Settings.model_fields else "not a setting"
                raise ModelsFileError(
                    f"{path}: [models.{model}] unknown key {key!r}{hint}: it is {known}; per-model keys "
                    f"are {', '.join(sorted(PER_MODEL))}"
                )
        out[model] = {key: _validated(path, model, key, value) for key, value in entry.items()}
    return out


def load_models(settings: Settings) -> ModelSet:
    """The models of this deployment, from DRIFTLOOP_MODEL_NAME, DRIFTLOOP_MODELS and the models file."""
    default = _check_name(settings.model_name, "DRIFTLOOP_MODEL_NAME")
    names = [default]
    for name in (n.strip() for n in settings.models.split(",")):
        if name and name not in names:
            names.append(_check_name(name, "DRIFTLOOP_MODELS"))
    overrides = _read_file(Path(settings.models_file)) if settings.models_file else {}
    names += [name for name in overrides if name not in names]
    return ModelSet(default=default, names=tuple(names), overrides=overrides)
