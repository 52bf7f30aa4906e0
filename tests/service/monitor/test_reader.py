from __future__ import annotations

import numpy as np
import pyarrow as pa

from detectors.profile import ReferenceProfile
from detectors.window import CategoricalSummary, NumericSummary
from service.monitor.reader import WindowData, _summarize_arrow, _summarize_python, arrow_table, merge

PROFILE = ReferenceProfile.fit(
    {"x": np.linspace(0, 10, 500), "c": np.array(["a", "b"] * 250, dtype=object)}, n_bins=20
)
ROWS = ['{"x": 1.5, "c": "a"}', '{"x": null, "c": "b"}', '{"x": 7, "c": null}', '{"c": "z"}', '{"x": 3}']


def summarize(use_arrow: bool) -> WindowData:
    data = WindowData(sample={"x": [], "c": []})
    schema = pa.schema([("x", pa.float64())])
    table = arrow_table(ROWS, schema) if use_arrow else None
    if use_arrow:
        assert table is not None
        _summarize_arrow(data, table, PROFILE.features, 0, [0, 2])
    else:
        import orjson

        _summarize_python(data, [orjson.loads(r) for r in ROWS], PROFILE.features, 0, [0, 2])
    return data


def test_arrow_and_python_paths_agree() -> None:
    fast, slow = summarize(True), summarize(False)
    for data in (fast, slow):
        x, c = data.summaries["x"], data.summaries["c"]
        assert isinstance(x, NumericSummary) and isinstance(c, CategoricalSummary)
        assert (x.n, x.n_missing, c.n, c.n_missing) == (3, 2, 3, 2)
        assert c.counts == {"a": 1, "b": 1, "z": 1}
    fx, sx = fast.summaries["x"], slow.summaries["x"]
    assert isinstance(fx, NumericSummary) and isinstance(sx, NumericSummary)
    assert np.array_equal(fx.counts, sx.counts)
    assert fast.sample == slow.sample == {"x": [1.5, 7.0], "c": ["a", None]}


def test_mixed_types_fall_back_and_chunks_add_up() -> None:
    assert arrow_table(['{"x": 1}', '{"x": "text"}'], pa.schema([("x", pa.float64())])) is None
    a = CategoricalSummary(2, 1, {"a": 2})
    b = CategoricalSummary(3, 0, {"a": 1, "b": 2})
    assert merge(a, b).counts == {"a": 3, "b": 2} and merge(None, a) is a
