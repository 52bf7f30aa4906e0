"""Export of the prediction log to Parquet: every column with its type, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from service.db.engine import make_engine
from service.lifecycle import export as export_module
from service.lifecycle.arrow_types import PROBABILITIES, is_json
from service.lifecycle.export import ExportError, ExportRequest, export_parquet
from tests.support.prediction_log import insert, prediction_row, unique_model

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """Export targets only (the SQLite database lives in tmp_path itself)."""
    path = tmp_path / "exports"
    path.mkdir()
    return path


def seed(engine: sa.Engine, model: str, n: int = 250) -> list[dict]:
    rows = [
        prediction_row(
            model,
            T0 + timedelta(seconds=i),
            {"age": 20.5 + i, "num_products": i % 4, "city": "abc"[i % 3], "vip": i % 5 == 0, "label": i},
            version="1" if i < n // 2 else "2",
            output=i % 2,
            probabilities={"0": 0.25, "1": 0.75},
            latency_ms=0.5 * i,
        )
        for i in range(n)
    ]
    labels = {r["id"]: (i % 2, T0 + timedelta(hours=1, seconds=i)) for i, r in enumerate(rows) if i % 3 == 0}
    insert(engine, rows, labels)
    return rows


def test_round_trip_keeps_every_column_and_its_type(engine: sa.Engine, out_dir: Path) -> None:
    model = unique_model()
    rows = seed(engine, model)
    out = out_dir / "out.parquet"
    result = export_parquet(engine, ExportRequest(model), out, chunk_rows=60)
    assert result.rows == len(rows) and result.segments == 1

    table = pq.read_table(out)
    schema = table.schema
    expected = {
        "prediction_id": pa.string(),
        "created_at": pa.timestamp("us", tz="UTC"),
        "model_name": pa.string(),
        "model_version": pa.string(),
        "endpoint": pa.string(),
        "latency_ms": pa.float64(),
        "age": pa.float64(),
        "num_products": pa.int64(),
        "city": pa.string(),
        "vip": pa.bool_(),
        "feature.label": pa.int64(),  # a feature named like a column keeps its values under a prefix
        "output": pa.int64(),
        "probabilities": PROBABILITIES,
        "label": pa.int64(),
        "label_received_at": pa.timestamp("us", tz="UTC"),
    }
    assert {f.name: f.type for f in schema} == expected
    assert schema.names[:6] == [
        "prediction_id",
        "created_at",
        "model_name",
        "model_version",
        "endpoint",
        "latency_ms",
    ]
    got = table.to_pylist()
    assert [g["prediction_id"] for g in got] == [r["id"] for r in rows]  # (created_at, id) order
    for i, (g, r) in enumerate(zip(got, rows, strict=True)):
        assert g["created_at"] == r["created_at"]
        assert g["model_version"] == r["model_version"]
        assert (g["age"], g["num_products"], g["city"], g["vip"], g["feature.label"]) == (
            20.5 + i, i % 4, "abc"[i % 3], i % 5 == 0, i
        )  # fmt: skip
        assert g["output"] == i % 2 and dict(g["probabilities"]) == {"0": 0.25, "1": 0.75}
        assert g["latency_ms"] == 0.5 * i
        if i % 3 == 0:
            assert g["label"] == i % 2 and g["label_received_at"] == T0 + timedelta(hours=1, seconds=i)
        else:
            assert g["label"] is None and g["label_received_at"] is None
    meta = pq.read_metadata(out).metadata
    assert model.encode() in meta[b"driftloop.export"]


def test_range_and_labeled_only_select_their_rows(engine: sa.Engine, out_dir: Path) -> None:
    model = unique_model()
    rows = seed(engine, model, n=90)
    seed(engine, unique_model(), n=30)  # another model's rows never leak in
    since, until = T0 + timedelta(seconds=10), T0 + timedelta(seconds=40)
    out = out_dir / "range.parquet"
    export_parquet(engine, ExportRequest(model, since=since, until=until), out)
    assert pq.read_table(out).column("prediction_id").to_pylist() == [r["id"] for r in rows[10:40]]

    labeled = out_dir / "labeled.parquet"
    result = export_parquet(engine, ExportRequest(model, labeled_only=True), labeled)
    table = pq.read_table(labeled)
    assert result.rows == 30 and table.column("prediction_id").to_pylist() == [r["id"] for r in rows[::3]]
    assert table.column("label").null_count == 0


def test_types_widen_across_chunks_into_one_schema(engine: sa.Engine, out_dir: Path) -> None:
    """Integers meeting a fraction become double, a late feature is null before it appears, labels first
    seen in a later chunk keep their type, a column mixing numbers and strings is kept as JSON text."""
    model = unique_model()
    early = [prediction_row(model, T0 + timedelta(seconds=i), {"n": i, "mixed": i}) for i in range(100)]
    late = [
        prediction_row(
            model, T0 + timedelta(seconds=100 + i), {"n": i + 0.5, "mixed": "x", "new": [i, i]}, output="yes"
        )
        for i in range(100)
    ]
    insert(engine, early + late, {r["id"]: ("yes", T0 + timedelta(days=1)) for r in late[:10]})
    out = out_dir / "wide.parquet"
    result = export_parquet(engine, ExportRequest(model), out, chunk_rows=50)
    assert result.segments > 1  # the file was re-laid once the schema widened
    assert sorted(p.name for p in out_dir.iterdir()) == ["wide.parquet"]
    table = pq.read_table(out)
    types = {f.name: f.type for f in table.schema}
    assert (
        types["n"] == pa.float64() and types["new"] == pa.list_(pa.int64()) and types["label"] == pa.string()
    )
    assert is_json(table.schema.field("mixed")) and is_json(table.schema.field("output"))
    got = table.to_pylist()
    assert [g["n"] for g in got] == [float(i) for i in range(100)] + [i + 0.5 for i in range(100)]
    assert got[0]["new"] is None and got[150]["new"] == [50, 50]
    assert got[3]["mixed"] == "3" and got[150]["mixed"] == '"x"'
    assert got[0]["output"] == "0" and got[150]["output"] == '"yes"'
    assert [g["label"] for g in got[100:111]] == ["yes"] * 10 + [None]


def test_empty_range_writes_the_fixed_columns(engine: sa.Engine, out_dir: Path) -> None:
    model = unique_model()
    seed(engine, model, n=5)
    out = out_dir / "empty.parquet"
    result = export_parquet(engine, ExportRequest(model, since=T0 + timedelta(days=9)), out)
    assert result.rows == 0 and pq.read_table(out).num_rows == 0
    assert "prediction_id" in pq.read_schema(out).names


def test_unknown_model_and_inverted_range_write_nothing(engine: sa.Engine, out_dir: Path) -> None:
    model = unique_model()
    seed(engine, model, n=5)
    with pytest.raises(ExportError, match="unknown model 'nobody'"):
        export_parquet(engine, ExportRequest("nobody"), out_dir / "a.parquet")
    with pytest.raises(ExportError, match="must be before"):
        export_parquet(
            engine, ExportRequest(model, since=T0, until=T0 - timedelta(days=1)), out_dir / "b.parquet"
        )
    assert list(out_dir.iterdir()) == []


def test_a_failure_mid_export_leaves_no_file(
    engine: sa.Engine, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = unique_model()
    seed(engine, model, n=200)
    out = out_dir / "half.parquet"
    out.write_bytes(b"previous export")
    real, calls = export_module.chunk_table, []

    def failing(rows):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(rows)

    monkeypatch.setattr(export_module, "chunk_table", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        export_parquet(engine, ExportRequest(model), out, chunk_rows=50)
    assert [p.name for p in out_dir.iterdir()] == ["half.parquet"]
    assert out.read_bytes() == b"previous export"  # the old file is untouched until a new one is complete


def test_overlapping_versions_are_merged_in_time_order(engine: sa.Engine, out_dir: Path) -> None:
    """A shadow version logging beside the champion: both read chunk by chunk, merged by (time, id)."""
    model = unique_model()
    rows = [
        prediction_row(model, T0 + timedelta(seconds=i // 2), {"x": i}, version=str(1 + i % 2), row_id=rid)
        for i, rid in enumerate(sorted(str(uuid.uuid4()) for _ in range(90)))
    ]  # pairs share a time (ties go by id)
    rows += [prediction_row(model, T0 + timedelta(seconds=10 + i), {"x": -1}, version="3") for i in range(5)]
    insert(engine, rows)
    out = out_dir / "merged.parquet"
    result = export_parquet(engine, ExportRequest(model), out, chunk_rows=7)
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]))]
    assert result.rows == 95 and pq.read_table(out).column("prediction_id").to_pylist() == expected


def test_no_connection_is_held_between_chunks(
    engine: sa.Engine, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk is its own short read: while a chunk is written, the export holds no connection (no
    snapshot that would hold back vacuum or a partition drop for the length of the export)."""
    model = unique_model()
    seed(engine, model, n=200)
    real, held = export_module.chunk_table, []

    def watching(rows):  # type: ignore[no-untyped-def]
        held.append(engine.pool.checkedout())  # type: ignore[attr-defined]
        return real(rows)

    monkeypatch.setattr(export_module, "chunk_table", watching)
    export_parquet(engine, ExportRequest(model), out_dir / "p.parquet", chunk_rows=30)
    assert held == [0] * 8  # 4 + 4 chunks of versions 1 and 2 (100 rows each)
