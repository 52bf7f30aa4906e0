from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from retrain.errors import InvalidSetting, TrainingFailed
from retrain.synthetic import FEATURES, TARGET
from retrain.train import load_recipe, train_challenger


@pytest.fixture
def recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "must look like"),
        ("module_only", "must look like"),
        (":function", "must look like"),
        ("no_such_module_xyz:fit", "cannot import module"),
        ("sklearn.base:no_such_function", "has no attribute"),
        ("retrain.synthetic:TARGET", "is not callable"),
    ],
)
def test_bad_recipe_specs_raise_value_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_recipe(spec)
    with pytest.raises(InvalidSetting):
        load_recipe(spec)


def test_default_recipe_refits_a_clone_and_leaves_champion_alone(
    demo_model: Pipeline, demo_data: pd.DataFrame
) -> None:
    before = demo_model.named_steps["classifier"].coef_.copy()
    X, y = demo_data[list(FEATURES)].head(600), demo_data[TARGET].head(600)
    challenger = train_challenger(demo_model, X, y)
    assert challenger is not demo_model
    assert type(challenger) is type(demo_model)
    assert challenger.get_params()["classifier__max_iter"] == demo_model.get_params()["classifier__max_iter"]
    assert (demo_model.named_steps["classifier"].coef_ == before).all()
    assert (challenger.named_steps["classifier"].coef_ != before).any()


def test_custom_recipe_gets_data_and_champion(
    recipes: None, demo_model: Pipeline, demo_data: pd.DataFrame
) -> None:
    import recipes_for_tests

    X, y = demo_data[list(FEATURES)], demo_data[TARGET]
    challenger = train_challenger(clone(demo_model).fit(X, y), X, y, recipe="recipes_for_tests:boosted")
    assert recipes_for_tests.CALLS[-1][0] == len(X)
    assert type(challenger.named_steps["model"]).__name__ == "HistGradientBoostingClassifier"
    assert challenger.predict_proba(X.head(3)).shape == (3, 2)


@pytest.mark.parametrize(
    ("recipe", "message"),
    [("recipes_for_tests:unfitted", "unfitted"), ("recipes_for_tests:explodes", "out of memory")],
)
def test_failing_recipes_raise_training_failed(
    recipes: None, demo_model: Pipeline, demo_data: pd.DataFrame, recipe: str, message: str
) -> None:
    with pytest.raises(TrainingFailed, match=message):
        train_challenger(demo_model, demo_data[list(FEATURES)], demo_data[TARGET], recipe=recipe)


def test_default_recipe_failure_is_training_failed(demo_model: Pipeline, demo_data: pd.DataFrame) -> None:
    one_class = demo_data[demo_data[TARGET] == 1].head(50)
    with pytest.raises(TrainingFailed, match="clone of the champion"):
        train_challenger(demo_model, one_class[list(FEATURES)], one_class[TARGET])
