from __future__ import annotations

from retrain.bootstrap import bootstrap_demo
from retrain.registry import Registry
from retrain.synthetic import FEATURES, TARGET, TIMESTAMP


def test_bootstrap_registers_and_promotes_version_one(registry: Registry) -> None:
    info = bootstrap_demo(registry, "demo", n_rows=1000, seed=4)
    assert (info.version, info.aliases) == ("1", ("champion",))
    assert info.tags["trigger"] == "bootstrap"
    reference = registry.load_reference("demo", "1")
    assert reference is not None
    assert set(reference.columns) == {*FEATURES, TARGET, TIMESTAMP}
    assert len(reference) == 800  # the newest 20% is the holdout for the run's metrics
    model = registry.load_estimator("demo", "1")
    assert model.predict_proba(reference[list(FEATURES)].head(5)).shape == (5, 2)
    assert [c.name for c in registry.input_schema("demo", "1")] == list(FEATURES)


def test_bootstrap_logs_its_holdout_for_the_label_free_estimators(registry: Registry) -> None:
    bootstrap_demo(registry, "demo", n_rows=1000, seed=4)
    holdout = registry.load_holdout("demo", "1")
    reference = registry.load_reference("demo", "1")
    assert holdout is not None and reference is not None
    assert len(holdout) == 200 and TARGET in holdout.columns
    assert holdout[TIMESTAMP].min() > reference[TIMESTAMP].max()  # newer than every training row
    registry.log_reference("demo", "1", reference.head(10))  # a replaced reference keeps the holdout
    assert len(registry.load_holdout("demo", "1")) == 200  # type: ignore[arg-type]
