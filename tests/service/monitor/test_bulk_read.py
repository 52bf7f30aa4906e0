"""The drift window read by COPY without ORDER BY (PostgreSQL) gives exactly the ordered reader's result:
the same summaries (float sums, kept values, category order), the same sample, on rows that arrive out
of seq order, with gaps in seq (another model's rows), and with chunks pyarrow cannot parse."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from detectors.profile import ReferenceProfile
from detectors.window import NumericSummary
from service.db.engine import make_engine
from service.db.streaming import unescape
from service.monitor import bulk_read, reader
from service.monitor.reader import WindowData, read_drift_window
from service.monitor.windows import Window, bounds, resolve_blocks, row_block
from tests.support.prediction_log import insert, prediction_row, unique_model

PROFILE = ReferenceProfile.fit(
    {
        "x": np.linspace(-5, 5, 400),
        "big": np.linspace(0, 2.0**63, 400),
        "c": np.array(["north", "south", "east", "west"] * 100, dtype=object),
        "out": np.array([0, 1] * 200, dtype=object),
    },
    n_bins=10,
)
FEATURES = {k: v for k, v in PROFILE.features.items() if k != "out"}
CITIES = ["north", "south", "east", "west", "Zürich ☃", 'say "hi"', "a\\b", "tab\there", "new\nline", ""]


def features_of(i: int, rng: np.random.Generator) -> dict[str, Any]:
    row: dict[str, Any] = {"x": float(rng.normal(0.5, 2)), "c": CITIES[int(rng.integers(len(CITIES)))]}
    if i % 11 == 0:
        row["x"] = None  # a null
    if i % 13 == 0:
        del row["c"]  # a missing key
    if i % 17 == 0:
        row["x"] = math.nan  # the codec stores null
    if i % 5 == 0:
        row["big"] = 2**63 - 1 - i  # exact integers beyond float precision
    if i % 19 == 0:
        row["extra"] = {"nested": [1, 2]}  # an unprofiled feature
    return row


def log(engine: sa.Engine, model: str, n: int, at: list[datetime], seed: int) -> None:
    """`n` rows, row i at time at[i % len(at)]."""
    rng = np.random.default_rng(seed)
    rows = [
        prediction_row(
            model, at[i % len(at)] + timedelta(seconds=i), features_of(i, rng), output=int(rng.integers(2))
        )
        for i in range(n)
    ]
    insert(engine, rows)


def read(engine: sa.Engine, window: Window, bulk: bool, n: int, chunk_rows: int = 7) -> WindowData:
    reader.BULK_READ = bulk
    try:
        return read_drift_window(
            engine,
            window,
            features=FEATURES,
            prediction=PROFILE.features["out"],
            expected_rows=n,
            keep_values_up_to=10_000,
            sample_rows=15,
            seed=3,
            chunk_rows=chunk_rows,
        )
    finally:
        reader.BULK_READ = True


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_same(a: WindowData, b: WindowData) -> None:
    assert a.n_rows == b.n_rows and list(a.summaries) == list(b.summaries)
    for name, x in a.summaries.items():
        y = b.summaries[name]
        assert type(x) is type(y), name
        for f in x.__dataclass_fields__:
            u, v = getattr(x, f), getattr(y, f)
            if isinstance(u, np.ndarray):
                assert u.dtype == v.dtype and np.array_equal(u, v, equal_nan=True), (name, f)
            elif isinstance(u, dict):
                assert list(u.items()) == list(v.items()), (name, f)  # the order too
            else:
                assert same_value(u, v) or u == v, (name, f, u, v)
    assert list(a.sample) == list(b.sample)
    for name, values in a.sample.items():
        assert len(values) == len(b.sample[name]) and all(map(same_value, values, b.sample[name])), name


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Small COPY runs (many per chunk and chunks over several runs); counts the chunks read again in
    order."""
    again: list[int] = []
    ordered = reader.read_ordered

    def counted(*args: Any, **kwargs: Any) -> None:
        again.append(1)
        ordered(*args, **kwargs)

    monkeypatch.setattr(bulk_read, "RUN_BYTES", 300)
    monkeypatch.setattr(bulk_read, "read_ordered", counted)
    return again


def test_copy_reads_what_the_ordered_cursor_reads(engine: sa.Engine, copies: list[int]) -> None:
    model, other = unique_model("bulk"), unique_model("other")
    now = datetime.now(UTC)
    # every other row in an earlier day (on PostgreSQL the default partition, scanned after today's):
    # rows arrive out of seq order within a chunk, and across chunks
    log(engine, model, 40, [now, now - timedelta(days=45)], seed=1)
    log(engine, other, 9, [now], seed=2)  # a gap in the model's seqs
    log(engine, model, 45, [now - timedelta(days=45)], seed=3)
    with engine.connect() as conn:
        gaps = resolve_blocks(conn, [row_block("drift", model, "1", 80, 0)])[0]
        tail = resolve_blocks(conn, [row_block("drift", model, "1", 20, 2)])[0]  # consecutive seqs
    for window, n in ((gaps, 80), (tail, 20)):
        for chunk_rows in (7, 50):
            assert_same(read(engine, window, True, n, chunk_rows), read(engine, window, False, n, chunk_rows))
    unordered = read(engine, gaps, True, 80)
    assert unordered.n_rows == 80 and len(unordered.sample["x"]) == 15
    c = unordered.summaries["c"]
    assert set(c.counts) <= set(CITIES) and {"Zürich ☃", 'say "hi"', "a\\b", "new\nline"} <= set(c.counts)
    if engine.dialect.name == "postgresql":
        assert copies == []  # every chunk came by COPY
    with engine.connect() as conn:  # a resolved block's time span without ORDER BY, the same as by OFFSET
        offset_block = row_block("drift", model, "1", 80, 0)
        assert bounds(conn, gaps) == bounds(conn, offset_block)
        assert bounds(conn, gaps)[0] < now - timedelta(days=44) < now <= bounds(conn, gaps)[1]


@pytest.mark.postgres
def test_a_chunk_pyarrow_cannot_parse_is_read_again_in_order(pg_database: str, copies: list[int]) -> None:
    engine = make_engine(pg_database)
    model = unique_model("bulk")
    rng = np.random.default_rng(4)
    rows = [prediction_row(model, datetime.now(UTC), features_of(i, rng)) for i in range(60)]
    rows[33]["features"] = '{"x": 1.5, "c": 7}'  # c: a number among strings (the Python path counts it)
    insert(engine, rows)
    with engine.connect() as conn:
        window = resolve_blocks(conn, [row_block("drift", model, "1", 60, 0)])[0]
    fast, slow = read(engine, window, True, 60), read(engine, window, False, 60)
    assert_same(fast, slow)
    assert 7 in fast.summaries["c"].counts
    assert 1 <= len(copies) < 60 // 7  # the chunks of the row that does not parse, only those
    # a window that holds fewer rows than it was counted with is read in order, whole
    assert_same(read(engine, window, True, 61), read(engine, window, False, 61))
    engine.dispose()


def test_copy_escapes_are_undone_or_refused() -> None:
    assert unescape(b'{"s":1,"f":{"c": "a\\\\\\\\b"}}\n') == b'{"s":1,"f":{"c": "a\\\\b"}}\n'
    assert unescape(b"plain\n") == b"plain\n"
    assert unescape(b"a\\tb\n") is None  # a raw tab in the text: not a JSON text


def test_parts_of_a_chunk_that_disagree_on_a_type_do_not_concatenate() -> None:
    import pyarrow as pa

    strings, nulls, ints = pa.table({"c": ["a", None]}), pa.table({"c": pa.nulls(2)}), pa.table({"c": [1, 2]})
    joined = bulk_read.concat([nulls, strings, pa.table({"x": [1.0]})])
    assert joined is not None and joined.column("c").type == pa.string()
    assert joined.column("c").to_pylist() == [None, None, "a", None, None]
    assert bulk_read.concat([strings, ints]) is None


@pytest.mark.parametrize(
    "texts",
    [
        ['"a"', None, '"b"', "null", '"a"'],
        ['"say \\"hi\\""', '"a\\\\b"', '"Zürich ☃"', '"new\\nline"', '""'],
        ["1", "-7", None, "9223372036854775807"],
        ["true", "false", "null"],
        [None, "null"],
    ],
)
def test_a_categorical_column_is_typed_as_the_json_reader_types_it(texts: list[str | None]) -> None:
    import io

    import pyarrow as pa
    import pyarrow.json as pa_json

    lines = "\n".join('{"c": ' + t + "}" if t is not None else "{}" for t in texts)
    expected = pa_json.read_json(io.BytesIO(lines.encode())).column("c").combine_chunks()
    typed = bulk_read.json_scalars(pa.array(texts, pa.string()))
    assert typed is not None and typed.type == expected.type and typed.to_pylist() == expected.to_pylist()


@pytest.mark.parametrize(
    "texts",
    [
        ['"a"', "7"],  # mixed: the JSON reader fails the chunk
        ["1", "2.5"],  # a double column there; refused here, not guessed
        ['"2024-01-01"', '"x"'],  # date-like strings may be read as timestamps
        ["[1]", "null"],
        ["1", "9223372036854775808"],  # past int64
    ],
)
def test_a_categorical_column_of_other_types_is_refused(texts: list[str | None]) -> None:
    import pyarrow as pa

    assert bulk_read.json_scalars(pa.array(texts, pa.string())) is None


@pytest.mark.postgres
def test_odd_rows_read_by_columns_as_in_order(pg_database: str, copies: list[int]) -> None:
    """A number in a string, a row whose features are not an object and an unprofiled key of two types
    send the ordered reader's chunk down its Python path; the column read gives the same without
    reading again. A string that is not a number in a numeric feature is read again in order."""
    engine = make_engine(pg_database)
    model = unique_model("bulk")
    rng = np.random.default_rng(5)
    rows = [prediction_row(model, datetime.now(UTC), features_of(i, rng)) for i in range(60)]
    rows[3]["features"] = '{"x": "2.5", "c": "north"}'
    rows[9]["features"] = "[1, 2]"
    rows[15]["features"] = '{"x": 1.0, "extra": 1}'
    rows[16]["features"] = '{"x": 2.0, "extra": "one"}'
    rows[47]["features"] = '{"x": "abc"}'
    insert(engine, rows)
    with engine.connect() as conn:
        window = resolve_blocks(conn, [row_block("drift", model, "1", 60, 0)])[0]
    fast, slow = read(engine, window, True, 60), read(engine, window, False, 60)
    assert_same(fast, slow)
    x = fast.summaries["x"]
    assert isinstance(x, NumericSummary) and x.values is not None and 2.5 in x.values
    assert 1 <= len(copies) <= 2  # the chunk of "abc" (and the next, when its run reaches into it)
    engine.dispose()
