"""The loop bench's concept-drift streams and the offline policies (bench/), checked on short streams."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bench._loop_offline import run_offline
from bench.concept_streams import FEATURES, TARGET, ConceptStream
from bench.loop_streams import figures, stream_baselines


@pytest.mark.parametrize("name", ["severe", "mild", "regression"])
def test_streams_drift_in_the_concept_only(name: str) -> None:
    stream = ConceptStream(name, windows=6, drifts=(3, 5))
    frame = stream.frame()
    before, after = stream.window(frame, 2), stream.window(frame, 3)
    for column in FEATURES:  # the features never change
        assert stats.ks_2samp(before[column], after[column]).pvalue > 0.001
    model = stream.user_model().fit(stream.initial()[list(FEATURES)], stream.initial()[TARGET])
    old, new = (model.predict(w[list(FEATURES)]) for w in (before, after))
    if stream.task == "classification":
        drop = np.mean(old == before[TARGET]) - np.mean(new == after[TARGET])
        assert (drop > 0.25) if name == "severe" else (0.03 < drop < 0.08)
    else:
        assert np.sqrt(np.mean((new - after[TARGET]) ** 2)) > 2 * np.sqrt(
            np.mean((old - before[TARGET]) ** 2)
        )


def test_driftloop_recovers_a_severe_drift_with_one_retrain() -> None:
    stream = ConceptStream("severe", windows=12, drifts=(5, 11))
    runs = {**stream_baselines(stream), "driftloop": run_offline(stream, "driftloop")}
    result = figures(stream, runs)
    assert result.retrains["driftloop"] == 1 and result.to_serve["driftloop"][0] == 2  # decisive: one window
    assert result.to_serve["oracle"][0] == 3 and result.retrains["every"] == 11
    assert result.recovered >= 0.9 and all(result.targets().values())


def test_driftloop_never_retrains_on_the_null_stream() -> None:
    run = run_offline(ConceptStream("null", windows=12), "driftloop")
    assert run.retrains == 0 and set(run.models) == {0}
    with pytest.raises(ValueError, match="valid: never, every, oracle, driftloop"):
        run_offline(ConceptStream("null", windows=3), "sometimes")


def test_records_for_the_live_replay() -> None:
    stream = ConceptStream("regression", windows=4, drifts=(2, 3))
    model, train, holdout = stream.fit_user_model()
    assert (len(train), len(holdout)) == (4000, 1000) and train["seq"].max() < holdout["seq"].min()
    records, truth = stream.records(stream.frame(), 1)
    assert len(records) == len(truth) == 1000 and set(records[0]) == set(FEATURES)
    assert isinstance(truth[0], float) and model.predict(
        stream.window(stream.frame(), 1)[list(FEATURES)]
    ).shape == (1000,)
