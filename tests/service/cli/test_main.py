"""The first commands a user runs: db upgrade, bootstrap, reference set, and serve's migration guard."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from retrain.synthetic import FEATURES, generate
from service.cli.main import app
from service.config import get_settings
from service.db.engine import get_engine, make_engine

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_db: Path) -> Path:
    import shutil

    monkeypatch.setenv("DRIFTLOOP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DRIFTLOOP_MODEL_NAME", "cli-model")
    monkeypatch.delenv("DRIFTLOOP_DATABASE_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copyfile(migrated_db, tmp_path / "mlflow.db")  # a migrated MLflow store saves seconds
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_serve_refuses_an_unmigrated_database(data_dir: Path) -> None:
    result = runner.invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "driftloop db upgrade" in result.output


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["scheduler"]])
def test_serve_and_scheduler_refuse_a_bad_models_file_naming_the_key(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    (data_dir / "models.toml").write_text("[models.fraud]\nbreach_k = 2\nbrech_m = 3\n")
    monkeypatch.setenv("DRIFTLOOP_MODELS_FILE", str(data_dir / "models.toml"))
    get_settings.cache_clear()
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert "[models.fraud] unknown key 'brech_m' (did you mean 'breach_m'?)" in result.output


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["scheduler"]])
def test_serve_and_scheduler_refuse_a_bad_setting_naming_its_variable(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("DRIFTLOOP_AUTOMATION_PAUSED", "maybe")
    get_settings.cache_clear()
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert "DRIFTLOOP_AUTOMATION_PAUSED='maybe' is invalid: Input should be a valid boolean" in result.output


def test_upgrade_bootstrap_and_reference_set(data_dir: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    boot = runner.invoke(app, ["bootstrap", "--rows", "800"])
    assert boot.exit_code == 0, boot.output
    assert "version 1 as champion" in boot.output
    again = runner.invoke(app, ["bootstrap", "--if-missing"])
    assert again.exit_code == 0 and "nothing to do" in again.output

    engine = make_engine(f"sqlite:///{data_dir / 'driftloop.db'}")
    with engine.connect() as conn:
        source, performance = conn.execute(
            sa.text("SELECT source, profile FROM reference_profiles WHERE model_version = '1'")
        ).one()
    assert source == "bootstrap" and '"accuracy"' in performance  # held-out metrics are the baseline

    training = generate(600, seed=4)
    good = data_dir / "training.parquet"
    training.to_parquet(good)
    result = runner.invoke(app, ["reference", "set", "1", str(good)])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        source, n_rows = conn.execute(
            sa.text("SELECT source, n_rows FROM reference_profiles WHERE model_version = '1'")
        ).one()
    assert (source, n_rows) == ("file:training.parquet", 600)

    lacking = data_dir / "lacking.csv"
    training.drop(columns=[FEATURES[0]]).to_csv(lacking, index=False)
    bad = runner.invoke(app, ["reference", "set", "1", str(lacking)])
    assert bad.exit_code == 2 and FEATURES[0] in bad.output
    missing = runner.invoke(app, ["reference", "set", "1", str(data_dir / "nope.csv")])
    assert missing.exit_code == 2 and "not found" in missing.output
    unknown = runner.invoke(app, ["reference", "set", "99", str(good)])
    assert unknown.exit_code == 2
