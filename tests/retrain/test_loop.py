from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.bootstrap import bootstrap_demo
from retrain.errors import NoChampion, NotEnoughData, RegistryUnavailable, TrainingFailed
from retrain.loop import run_retrain
from retrain.registry import Registry
from retrain.synthetic import FEATURES, TARGET, TIMESTAMP, DriftPlan, generate

NAME = "churn"
COLUMNS = {"features": FEATURES, "target": TARGET, "time_column": TIMESTAMP}


@pytest.fixture(scope="module")
def bootstrapped_db(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path) -> Path:
    """A store whose version 1 is the demo champion, trained once per module and copied per test.

    Copies share the template's artifact folder; new runs get fresh ids there, so tests never collide.
    """
    root = tmp_path_factory.mktemp("bootstrapped")
    shutil.copyfile(migrated_db, root / "mlflow.db")
    template = Registry(f"sqlite:///{root / 'mlflow.db'}", artifact_location=str(root / "artifacts"))
    bootstrap_demo(template, NAME, n_rows=2000, seed=1)
    return root / "mlflow.db"


@pytest.fixture
def champion(tmp_path: Path, bootstrapped_db: Path) -> Registry:
    shutil.copyfile(bootstrapped_db, tmp_path / "mlflow.db")
    return Registry(f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.fixture
def recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


def _post_drift(n_rows: int) -> pd.DataFrame:
    """Labeled production traffic after a concept drift (income and tenure effects flipped)."""
    return generate(n_rows, seed=7, drift=DriftPlan(concept_at=5000), offset=5000)


def test_concept_drift_retrain_beats_champion_and_is_promoted(champion: Registry) -> None:
    steps: list[str] = []
    outcome = run_retrain(
        champion, NAME, _post_drift(1500), **COLUMNS, holdout_fraction=0.3, min_rows=500,
        tags={"trigger": "episode", "job_id": "42"}, on_step=steps.append,
    )  # fmt: skip
    assert outcome.status == "promoted", outcome.reason
    assert (outcome.champion_version_before, outcome.challenger_version) == ("1", "2")
    assert outcome.evaluation.challenger_score > outcome.evaluation.champion_score + 0.15
    assert (outcome.n_train, outcome.n_holdout) == (1050, 450)
    assert steps[0] == "load champion" and steps[-1] == "gate"

    new = champion.champion(NAME)
    assert new is not None and new.version == "2"
    assert champion.get_alias(NAME, "previous_champion").version == "1"  # type: ignore[union-attr]
    assert new.tags["validation_status"] == "passed" and new.tags["job_id"] == "42"
    assert "challenger" in new.aliases
    reference = champion.load_reference(NAME, "2")  # the training data becomes the new reference
    assert reference is not None and len(reference) == outcome.n_train


def test_after_a_change_the_challenger_learns_only_the_new_concept(champion: Registry) -> None:
    # 1200 rows of the old concept, then 1200 of the new: the change is the first post-drift row
    rows = generate(2400, seed=8, drift=DriftPlan(concept_at=1200), offset=0)
    change = rows[TIMESTAMP].iloc[1200]
    outcome = run_retrain(champion, NAME, rows, **COLUMNS, change_at=change, min_rows=200)
    assert outcome.post_change and outcome.status == "promoted", outcome.reason
    assert (outcome.n_train, outcome.n_holdout) == (960, 240)  # 0.2 of the 1200 post-change rows held out
    assert "since the change" in outcome.data_reason
    paired = outcome.evaluation.paired
    assert paired is not None and paired.test == "mcnemar_exact" and paired.p_val < 0.05
    assert "mcnemar_exact p=" in outcome.reason
    baseline = outcome.baseline  # the new champion's baseline for the breach test: its holdout accuracy
    assert baseline is not None and (baseline.metric, baseline.n) == ("accuracy", 240)
    assert baseline.value == pytest.approx(outcome.evaluation.challenger_score)
    late = run_retrain(champion, NAME, rows, **COLUMNS, change_at=rows[TIMESTAMP].iloc[-20], min_rows=200)
    assert not late.post_change and "fell back" in late.data_reason


def test_gate_rejects_worse_challenger_and_leaves_champion(champion: Registry, recipes: None) -> None:
    outcome = run_retrain(
        champion, NAME, generate(600, seed=3, offset=3000), **COLUMNS, min_rows=200,
        recipe="recipes_for_tests:majority_class",
    )  # fmt: skip
    assert outcome.status == "rejected"
    assert "does not beat" in outcome.reason
    assert champion.champion(NAME).version == "1"  # type: ignore[union-attr]
    rejected = champion.get_alias(NAME, "challenger")
    assert rejected is not None and rejected.version == outcome.challenger_version == "2"
    assert rejected.tags["validation_status"] == "rejected"
    assert champion.get_alias(NAME, "previous_champion") is None


def test_force_promotes_a_rejected_challenger(champion: Registry, recipes: None) -> None:
    outcome = run_retrain(
        champion, NAME, generate(400, seed=3, offset=3000), **COLUMNS, min_rows=200,
        recipe="recipes_for_tests:majority_class", force=True,
    )  # fmt: skip
    assert outcome.status == "promoted" and outcome.reason.startswith("forced")
    assert champion.champion(NAME).tags["validation_status"] == "forced"  # type: ignore[union-attr]


def test_reference_plus_recent_trains_on_both(champion: Registry) -> None:
    reference = champion.load_reference(NAME, "1")
    assert reference is not None
    outcome = run_retrain(
        champion, NAME, generate(400, seed=3, offset=3000), **COLUMNS, reference=reference,
        policy="reference_plus_recent", holdout_fraction=0.25, min_rows=200,
    )  # fmt: skip
    assert outcome.n_train == len(reference) + 300


def test_not_enough_labeled_rows(champion: Registry) -> None:
    labeled = generate(300, seed=3, offset=3000)
    labeled.loc[labeled.index[:150], TARGET] = np.nan  # unlabeled rows do not count
    with pytest.raises(NotEnoughData, match="150 labeled rows"):
        run_retrain(champion, NAME, labeled, **COLUMNS, min_rows=200)
    assert [v.version for v in champion.list_versions(NAME)] == ["1"]


def test_training_crash_leaves_champion_and_registers_nothing(champion: Registry, recipes: None) -> None:
    with pytest.raises(TrainingFailed, match="out of memory"):
        run_retrain(champion, NAME, generate(400, seed=3), **COLUMNS, recipe="recipes_for_tests:explodes")
    assert champion.champion(NAME).version == "1"  # type: ignore[union-attr]
    assert len(champion.list_versions(NAME)) == 1


def test_no_champion(registry: Registry) -> None:
    with pytest.raises(NoChampion, match="bootstrap"):
        run_retrain(registry, NAME, generate(400), **COLUMNS)


def test_unreachable_mlflow_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable):
        run_retrain(Registry("http://127.0.0.1:9"), NAME, generate(400), **COLUMNS)
    assert time.monotonic() - started < 5


def test_invalid_policy_is_rejected_before_any_work(registry: Registry) -> None:
    with pytest.raises(ValueError, match="reference_plus_recent"):
        run_retrain(registry, NAME, generate(10), **COLUMNS, policy="everything")  # type: ignore[arg-type]
