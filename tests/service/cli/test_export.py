"""`driftloop export`: the command's output file and its bad input (exit 2, a message, nothing written)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from service.cli.main import app
from service.config import get_settings
from service.db.engine import get_engine, make_engine
from tests.support.prediction_log import insert, prediction_row, unique_model

runner = CliRunner()
T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def model(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = unique_model("cli")
    monkeypatch.setenv("DRIFTLOOP_DATABASE_URL", database_url)
    monkeypatch.setenv("DRIFTLOOP_MODEL_NAME", name)
    get_settings.cache_clear()
    get_engine.cache_clear()
    engine = make_engine(database_url)
    rows = [
        prediction_row(name, T0 + timedelta(minutes=i), {"x": i * 1.5, "c": "ab"[i % 2]}) for i in range(300)
    ]
    insert(engine, rows, {r["id"]: (1, T0 + timedelta(days=1)) for r in rows[:40]})
    engine.dispose()
    yield name
    get_settings.cache_clear()
    get_engine.cache_clear()


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "exports"
    path.mkdir()
    return path


def test_export_writes_the_range(model: str, out_dir: Path) -> None:
    out = out_dir / "p.parquet"
    args = [
        "export",
        str(out),
        "--since",
        "2026-05-01T01:00",
        "--until",
        "2026-05-01T02:00+00:00",
        "--chunk-rows",
        "100",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"wrote 60 rows of {model}" in result.stdout
    table = pq.read_table(out)
    assert table.num_rows == 60 and table.column("x").to_pylist()[0] == 60 * 1.5

    labeled = out_dir / "l.parquet"
    result = runner.invoke(app, ["export", str(labeled), "--model", model, "--labeled-only"])
    assert result.exit_code == 0, result.output
    assert pq.read_table(labeled).num_rows == 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["--since", "2026-05-02", "--until", "2026-05-01"], "must be before --until"),
        (["--since", "yesterday"], "not an ISO 8601"),
    ],
)
def test_bad_request_exits_2_and_writes_nothing(
    model: str, out_dir: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["export", str(out_dir / "p.parquet"), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert list(out_dir.iterdir()) == []


def test_unwritable_path_exits_2_and_writes_nothing(model: str, out_dir: Path) -> None:
    (out_dir / "a-file").write_text("x")
    for target, message in [
        (out_dir / "missing" / "p.parquet", "does not exist"),
        (out_dir, "is a directory"),
        (out_dir / "a-file" / "p.parquet", "does not exist"),
        (Path("/proc/driftloop-export.parquet"), "cannot write to /proc"),  # refused even to root
    ]:
        result = runner.invoke(app, ["export", str(target)])
        assert result.exit_code == 2, (target, result.output)
        assert message in result.stderr
    assert [p.name for p in out_dir.iterdir()] == ["a-file"]


def test_bad_input_is_refused_before_the_range_is_counted(
    model: str, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.lifecycle import export as export_module

    def never(*_args: object) -> int:
        raise AssertionError("counted a range it should have refused")

    monkeypatch.setattr(export_module, "count_rows", never)
    for args, message in [
        ([str(out_dir / "missing" / "p.parquet")], "does not exist"),
        ([str(out_dir / "p.parquet"), "--model", "nobody"], "unknown model 'nobody'"),
    ]:
        result = runner.invoke(app, ["export", *args])
        assert result.exit_code == 2 and message in result.stderr, result.output
    assert list(out_dir.iterdir()) == []
