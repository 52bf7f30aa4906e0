from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from retrain.errors import InvalidSetting
from retrain.post_change import post_change_split
from retrain.synthetic import TIMESTAMP, DriftPlan, generate


def _stream() -> tuple[pd.DataFrame, pd.Timestamp]:
    rows = generate(3000, seed=4, drift=DriftPlan(concept_at=2000))
    return rows.sample(frac=1.0, random_state=1), rows[TIMESTAMP].iloc[2000]  # shuffled: order from time


def test_trains_and_holds_out_only_rows_after_the_change() -> None:
    rows, change = _stream()
    data = post_change_split(rows, time_column=TIMESTAMP, change_at=change, holdout_fraction=0.3)
    assert data.post_change and data.n_post_change == 1000
    assert (len(data.train), len(data.holdout)) == (700, 300)
    assert data.train[TIMESTAMP].min() == change
    assert data.train[TIMESTAMP].max() < data.holdout[TIMESTAMP].min()  # holdout = newest post-change rows
    assert "1000 labeled rows since the change" in data.reason


def test_falls_back_to_the_recent_window_and_says_why() -> None:
    rows, _ = _stream()
    late = rows[TIMESTAMP].sort_values().iloc[-50]
    data = post_change_split(rows, time_column=TIMESTAMP, change_at=late, min_rows=200)
    assert not data.post_change and data.n_post_change == 50
    assert len(data.train) + len(data.holdout) == 3000
    assert data.reason.startswith("only 50 labeled rows since the change") and "fell back" in data.reason


def test_no_change_point_and_naive_timestamps() -> None:
    rows, change = _stream()
    plain = post_change_split(rows, time_column=TIMESTAMP)
    assert not plain.post_change and plain.reason.startswith("no change point")
    naive = change.tz_convert("UTC").tz_localize(None).to_pydatetime()  # the DB may hand back naive UTC
    assert post_change_split(rows, time_column=TIMESTAMP, change_at=naive).n_post_change == 1000
    stripped = rows.assign(**{TIMESTAMP: rows[TIMESTAMP].dt.tz_localize(None)})
    aware = datetime(2026, 1, 1, tzinfo=UTC) + (change.to_pydatetime() - datetime(2026, 1, 1, tzinfo=UTC))
    assert post_change_split(stripped, time_column=TIMESTAMP, change_at=aware).n_post_change == 1000
    with pytest.raises(InvalidSetting, match="time column"):
        post_change_split(rows, time_column="seq", change_at=3)
