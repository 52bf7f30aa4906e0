"""DRIFTLOOP_MODELS and the models file: which models, each one's settings, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import Settings
from service.model_settings import PER_MODEL, ModelsFileError, load_models


def _settings(tmp_path: Path, text: str | None = None, **kw: str) -> Settings:
    if text is not None:
        (tmp_path / "models.toml").write_text(text)
        kw["models_file"] = str(tmp_path / "models.toml")
    return Settings(_env_file=None, model_name="main", **kw)  # type: ignore[call-arg]


def test_the_default_model_comes_first_then_the_list_then_the_file(tmp_path: Path) -> None:
    text = "[models.fraud]\nwindow_rows = 500\n[models.churn]\nbreach_k = 3\nbreach_m = 5\n"
    settings = _settings(tmp_path, text, models=" churn, , main,ads ")
    models = load_models(settings)
    assert (models.default, models.names) == ("main", ("main", "churn", "ads", "fraud"))
    churn = models.settings_for(settings, "churn")
    assert (churn.model_name, churn.breach_k, churn.breach_m) == ("churn", 3, 5)
    assert churn.window_rows == settings.window_rows  # not overridden: the global value
    assert models.settings_for(settings, "fraud").window_rows == 500
    assert models.settings_for(settings, "ads") == settings.model_copy(update={"model_name": "ads"})
    with pytest.raises(KeyError):
        models.settings_for(settings, "nope")


def test_one_model_by_default(tmp_path: Path) -> None:
    assert load_models(_settings(tmp_path)).names == ("main",)


def test_values_are_typed_like_the_settings(tmp_path: Path) -> None:
    text = '[models.a]\nretrain_on_episode = false\nperformance_metric = "f1"\nwindow_kind = "time"\n'
    settings = _settings(tmp_path, text)
    a = load_models(settings).settings_for(settings, "a")
    assert (a.retrain_on_episode, a.performance_metric, a.window_kind) == (False, "f1", "time")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[models.a]\nwindow_rowz = 5\n",
            r"\[models.a\] unknown key 'window_rowz' \(did you mean 'window_rows'\?\)",
        ),
        ("[models.a]\ndatabase_url = 'x'\n", r"unknown key 'database_url'.*a process-wide setting"),
        ("[models.a]\nbreach_k = 0\n", r"\[models.a\] breach_k = 0 is invalid: .*greater than or equal to 1"),
        ("[models.a]\nwindow_kind = 'weekly'\n", r"\[models.a\] window_kind = 'weekly' is invalid"),
        ("[models.a]\nwindow_rows = 'many'\n", r"window_rows = 'many' is invalid"),
        ("[models.a]\nautomation_paused = 'maybe'\n", r"\[models.a\] automation_paused = 'maybe' is invalid"),
        ("[model.a]\nwindow_rows = 5\n", r"unknown top-level key 'model'"),
        ("[models]\na = 5\n", r"models.a must be a table"),
        ("[models.a\n", r"not valid TOML"),
        ('[models."a/b"]\n', r"model name 'a/b'"),
    ],
)
def test_a_bad_file_names_the_model_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ModelsFileError, match=message) as info:
        load_models(_settings(tmp_path, text))
    assert str(tmp_path / "models.toml") in str(info.value)


def test_a_missing_file_and_a_bad_name_in_the_list_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelsFileError, match=r"DRIFTLOOP_MODELS_FILE=.*nope.toml: cannot be read"):
        load_models(_settings(tmp_path, models_file=str(tmp_path / "nope.toml")))
    with pytest.raises(ModelsFileError, match=r"DRIFTLOOP_MODELS: model name 'a/b'"):
        load_models(_settings(tmp_path, models="ok,a/b"))


def test_every_per_model_key_is_a_setting() -> None:
    assert set(Settings.model_fields) >= PER_MODEL
