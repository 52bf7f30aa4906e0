from __future__ import annotations

import pandas as pd

from retrain.bootstrap import bootstrap_demo
from retrain.registry import Registry
from retrain.synthetic import FEATURES, generate
from service.db.engine import make_engine
from service.monitor.references import load_reference, store_reference


def test_store_and_load_keep_features_and_bound_the_sample(database_url: str) -> None:
    engine = make_engine(database_url)
    data = generate(7000, seed=2)  # has target and timestamp columns
    stored = store_reference(engine, model_name="ref-test", model_version="7", data=data, source="test")
    assert stored.profile.feature_names == list(FEATURES)
    loaded = load_reference(engine, model_name="ref-test", model_version="7")
    assert loaded is not None
    assert list(loaded.sample.columns) == [*FEATURES, "target"] and len(loaded.sample) == 5000
    assert loaded.profile.to_json() == stored.profile.to_json()
    assert load_reference(engine, model_name="ref-test", model_version="8") is None


def test_missing_profile_is_fitted_from_the_registry_artifact(sqlite_url: str, registry: Registry) -> None:
    engine = make_engine(sqlite_url)
    info = bootstrap_demo(registry, "ref-model", n_rows=1500)
    loaded = load_reference(engine, model_name="ref-model", model_version=info.version, registry=registry)
    assert loaded is not None and loaded.source.startswith("mlflow:")
    reference = registry.load_reference("ref-model", info.version)
    assert reference is not None and loaded.profile.n_rows == len(reference) > 1000
    again = load_reference(engine, model_name="ref-model", model_version=info.version)  # now stored
    assert again is not None and isinstance(again.sample, pd.DataFrame)


def test_the_registry_gives_the_features_and_the_task(sqlite_url: str, registry: Registry) -> None:
    """A label with any name is never profiled: the features are the signature's inputs; the task is the
    model's and is stored with the reference."""
    from service.monitor.sources import RegistryReferences

    engine = make_engine(sqlite_url)
    info = bootstrap_demo(registry, "roles-model", n_rows=1500)
    frame = registry.load_reference("roles-model", info.version)
    assert frame is not None
    registry.log_reference("roles-model", info.version, frame.rename(columns={"target": "defaulted"}))
    loaded = load_reference(
        engine, model_name="roles-model", model_version=info.version, registry=RegistryReferences(registry),
        target="defaulted",
    )  # fmt: skip
    assert loaded is not None
    assert loaded.profile.feature_names == list(FEATURES)  # not `defaulted`, not `timestamp`
    assert (loaded.task, loaded.target) == ("classification", "defaulted")
    again = load_reference(engine, model_name="roles-model", model_version=info.version)
    assert again is not None and again.task == "classification"  # stored with the row


def test_a_named_target_that_is_missing_is_an_error_naming_the_setting() -> None:
    import pytest

    from service.monitor.references import target_column

    frame = pd.DataFrame({"x": [1.0], "label": [0]})
    assert target_column(frame, None, ["x"]) == "label"
    with pytest.raises(ValueError, match="DRIFTLOOP_TARGET_COLUMN='defaulted'"):
        target_column(frame, "defaulted", ["x"])
