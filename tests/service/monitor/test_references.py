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
