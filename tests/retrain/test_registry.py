from __future__ import annotations

import time

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from retrain.errors import (
    ChampionChanged,
    MissingSignature,
    ModelNotFound,
    NoPreviousChampion,
    RegistryUnavailable,
)
from retrain.registry import REFERENCE_PATH, Registry
from retrain.synthetic import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, TARGET

NAME = "churn"


def _register(registry: Registry, model: Pipeline, data: pd.DataFrame, **tags: str) -> str:
    return registry.log_and_register(NAME, model, data, features=FEATURES, target=TARGET, tags=tags).version


def _tree_pipeline(classifier: object) -> Pipeline:
    encode = ColumnTransformer(
        [
            ("num", "passthrough", list(NUMERIC_FEATURES)),
            (
                "cat",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                list(CATEGORICAL_FEATURES),
            ),
        ]
    )
    return Pipeline([("encode", encode), ("model", classifier)])


def test_unknown_model_has_no_aliases_or_versions(registry: Registry) -> None:
    assert registry.has_model(NAME) is False
    for refused in ("a:b", "..x", "."):  # names MLflow refuses cannot be registered: not an error
        assert registry.has_model(refused) is False
    assert registry.champion(NAME) is None
    assert registry.champion_version(NAME) is None
    assert registry.list_versions(NAME) == []
    with pytest.raises(ModelNotFound):
        registry.load_estimator(NAME, "1")


def test_log_and_register_round_trip(
    registry: Registry, demo_model: Pipeline, demo_data: pd.DataFrame
) -> None:
    info = registry.log_and_register(
        NAME, demo_model, demo_data, features=FEATURES, target=TARGET,
        params={"C": 1.0}, metrics={"accuracy": 0.8}, tags={"trigger": "test"}, run_name="unit",
    )  # fmt: skip
    assert (info.name, info.version, info.aliases) == (NAME, "1", ())
    assert info.tags["trigger"] == "test"
    assert info.run_id is not None
    run = mlflow.MlflowClient(registry.tracking_uri).get_run(info.run_id)
    assert run.data.params["C"] == "1.0" and run.data.metrics["accuracy"] == 0.8

    loaded = registry.load_estimator(NAME, "1")
    X = demo_data[list(FEATURES)].head(50)
    np.testing.assert_allclose(loaded.predict_proba(X), demo_model.predict_proba(X))

    schema = {c.name: c.type for c in registry.input_schema(NAME, "1")}
    assert schema == {
        "age": "double", "income": "double", "tenure_months": "double", "balance": "double",
        "num_products": "long", "region": "string", "channel": "string", "plan": "string",
    }  # fmt: skip
    reference = registry.load_reference(NAME, "1")
    assert reference is not None
    pd.testing.assert_frame_equal(reference, demo_data.reset_index(drop=True))


def test_promote_keeps_previous_champion_and_rollback_swaps(
    registry: Registry, demo_model: Pipeline, demo_data: pd.DataFrame
) -> None:
    v1, v2, v3 = (_register(registry, demo_model, demo_data.head(500)) for _ in range(3))
    with pytest.raises(NoPreviousChampion):
        registry.rollback(NAME)

    assert registry.champion_version(NAME) is None  # registered, no champion yet
    assert registry.promote(NAME, v1).aliases == ("champion",)
    assert registry.get_alias(NAME, "previous_champion") is None
    registry.promote(NAME, v2)
    assert registry.champion(NAME).version == v2  # type: ignore[union-attr]
    assert registry.champion_version(NAME) == v2
    assert registry.get_alias(NAME, "previous_champion").version == v1  # type: ignore[union-attr]
    registry.promote(NAME, v2)  # promoting the champion again must not make it its own predecessor
    assert registry.get_alias(NAME, "previous_champion").version == v1  # type: ignore[union-attr]

    registry.set_alias(NAME, "challenger", v3)
    versions = registry.list_versions(NAME)
    assert [(v.version, v.aliases) for v in versions] == [
        (v3, ("challenger",)), (v2, ("champion",)), (v1, ("previous_champion",)),
    ]  # fmt: skip

    restored = registry.rollback(NAME)
    assert (restored.version, restored.aliases) == (v1, ("champion",))
    assert registry.get_alias(NAME, "previous_champion").version == v2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "classifier",
    [
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
        RandomForestClassifier(n_estimators=10, random_state=0),
    ],
    ids=["hist_gradient_boosting", "random_forest"],
)
def test_tree_models_are_logged_with_skops_trusted_types(
    registry: Registry, demo_data: pd.DataFrame, classifier: object
) -> None:
    model = _tree_pipeline(classifier).fit(demo_data[list(FEATURES)], demo_data[TARGET])
    version = _register(registry, model, demo_data)
    loaded = registry.load_estimator(NAME, version)
    X = demo_data[list(FEATURES)].head(100)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    mlflow.set_tracking_uri(registry.tracking_uri)
    flavor = mlflow.models.get_model_info(f"models:/{NAME}/{version}").flavors["sklearn"]
    assert flavor["serialization_format"] == "skops"
    # a tree's own types (Tree, TreePredictor) are outside skops' default allow-list: logged as trusted
    untrusted = set(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    assert untrusted and untrusted <= set(flavor["skops_trusted_types"])


def test_byom_model_without_reference_then_reference_set(
    registry: Registry, demo_model: Pipeline, demo_data: pd.DataFrame
) -> None:
    # a user's own model, logged with plain MLflow and no reference artifact
    mlflow.set_tracking_uri(registry.tracking_uri)
    with mlflow.start_run():
        X = demo_data[list(FEATURES)]
        mlflow.sklearn.log_model(
            demo_model, name="model", registered_model_name=NAME,
            signature=mlflow.models.infer_signature(X, demo_model.predict(X)),
            pip_requirements=["scikit-learn"],  # skips MLflow's slow requirement inference
        )  # fmt: skip
    assert registry.load_reference(NAME, "1") is None

    registry.log_reference(NAME, "1", demo_data.head(100))
    reference = registry.load_reference(NAME, "1")
    assert reference is not None and len(reference) == 100
    registry.log_reference(NAME, "1", demo_data.head(40))  # replaces, not appends
    assert len(registry.load_reference(NAME, "1")) == 40  # type: ignore[arg-type]
    assert "driftloop.reference_updated_at" in registry.get_version(NAME, "1").tags


def test_reference_for_version_registered_without_a_run(
    registry: Registry, demo_model: Pipeline, demo_data: pd.DataFrame, tmp_path: object
) -> None:
    path = f"{tmp_path}/saved_model"
    mlflow.sklearn.save_model(
        demo_model, path, serialization_format="cloudpickle", pip_requirements=["scikit-learn"]
    )
    client = mlflow.MlflowClient(registry.tracking_uri)
    client.create_registered_model(NAME)
    client.create_model_version(NAME, source=path)
    assert registry.load_reference(NAME, "1") is None
    registry.log_reference(NAME, "1", demo_data.head(10))
    assert len(registry.load_reference(NAME, "1")) == 10  # type: ignore[arg-type]
    # the model has no signature: the service must be told plainly
    with pytest.raises(MissingSignature, match="no signature"):
        registry.input_schema(NAME, "1")


def test_unreachable_server_raises_registry_unavailable_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    registry = Registry("http://127.0.0.1:9")  # discard port: nothing listens
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="unreachable"):
        registry.champion(NAME)
    assert time.monotonic() - started < 5


def test_against_real_mlflow_server(mlflow_server: str, demo_data: pd.DataFrame) -> None:
    registry = Registry(mlflow_server, experiment="server-test")
    model = _tree_pipeline(HistGradientBoostingClassifier(max_iter=10, random_state=0))
    model.fit(demo_data[list(FEATURES)], demo_data[TARGET])
    first = registry.log_and_register(NAME, model, demo_data, features=FEATURES, target=TARGET)
    # a second version of the same artifacts is enough to exercise the aliases, and saves an upload
    model_id = first.source.removeprefix("models:/")
    client = mlflow.MlflowClient(mlflow_server)
    client.create_model_version(NAME, first.source, first.run_id, model_id=model_id)
    registry.promote(NAME, "1")
    registry.promote(NAME, "2")
    assert registry.champion(NAME).version == "2"  # type: ignore[union-attr]
    assert registry.champion_version(NAME) == "2"
    assert registry.rollback(NAME).version == "1"
    assert [v.aliases for v in registry.list_versions(NAME)] == [("previous_champion",), ("champion",)]
    X = demo_data[list(FEATURES)].head(20)
    np.testing.assert_allclose(registry.load_estimator(NAME, "2").predict_proba(X), model.predict_proba(X))
    assert len(registry.load_reference(NAME, "1")) == len(demo_data)  # type: ignore[arg-type]
    assert REFERENCE_PATH == "reference/reference.parquet"


def test_promote_and_rollback_are_compare_and_set_on_the_champion(
    registry: Registry, demo_model: Pipeline, demo_data: pd.DataFrame
) -> None:
    first = registry.log_and_register(NAME, demo_model, demo_data.head(300), features=FEATURES, target=TARGET)
    client = mlflow.MlflowClient(registry.tracking_uri)
    for _ in range(2):  # versions 2 and 3 of the same artifacts: no second upload
        client.create_model_version(NAME, first.source, first.run_id, model_id=first.source.split("/")[-1])
    with pytest.raises(ChampionChanged, match="champion is version none, not the expected version 9"):
        registry.promote(NAME, "1", expected_champion="9")
    assert registry.champion(NAME) is None  # nothing moved
    registry.promote(NAME, "1", expected_champion=None)
    registry.promote(NAME, "2", expected_champion="1")
    with pytest.raises(ChampionChanged) as refused:  # evaluated against 1, but 2 is the champion now
        registry.promote(NAME, "3", expected_champion="1")
    assert (refused.value.expected, refused.value.found) == ("1", "2")
    with pytest.raises(ChampionChanged):
        registry.rollback(NAME, expected_champion="1")
    aliases = {a: v.version for v in registry.list_versions(NAME) for a in v.aliases}
    assert aliases == {"champion": "2", "previous_champion": "1"}
    assert registry.promote(NAME, "2", expected_champion="1").version == "2"  # already done: idempotent
    assert registry.rollback(NAME, expected_champion="2").version == "1"
    registry.set_alias(NAME, "previous_champion", "1")  # a pointer that names the champion itself
    with pytest.raises(NoPreviousChampion, match="the champion itself"):
        registry.rollback(NAME)
    registry.delete_alias(NAME, "previous_champion")
    registry.delete_alias(NAME, "previous_champion")  # absent: no error
    assert registry.get_alias(NAME, "previous_champion") is None
