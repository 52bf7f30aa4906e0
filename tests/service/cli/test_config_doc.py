"""docs/configuration.md (and README.md's copy, once it has one) is exactly what `Settings` generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli.config_doc import DOC_PATH, END, START, env_names, main, render_document, render_table
from service.config import Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def test_configuration_doc_is_generated_from_settings() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render_document(), (
        "docs/configuration.md is stale: run `python -m service.cli.config_doc`"
    )


def test_table_lists_every_setting_with_its_default_once() -> None:
    rows = [line for line in render_table().splitlines() if line.startswith("| `")]
    assert len(rows) == len(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        first = f"| `{env_names(name, field)[0]}`"
        assert sum(row.startswith(first) for row in rows) == 1, name
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    row = next(r for r in rows if r.startswith("| `DRIFTLOOP_EMBEDDED_SCHEDULER`"))
    assert f"`{str(defaults.embedded_scheduler).lower()}`" in row
    row = next(r for r in rows if r.startswith("| `DRIFTLOOP_WINDOW_ROWS`"))
    assert f"`{defaults.window_rows}`" in row and "Rows per window" in row


def test_readme_copy_matches_when_present() -> None:
    readme = README.read_text(encoding="utf-8") if README.exists() else ""
    if START not in readme:
        pytest.skip(f"README.md has no {START} marker yet")
    assert END in readme, f"README.md has {START} but not {END}"
    assert render_table() in readme, "README.md's configuration table is stale: paste `--table` output"


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import service.cli.config_doc as config_doc

    stale = tmp_path / "configuration.md"
    stale.write_text(render_document().replace("| `DRIFTLOOP_MODEL_NAME`", "| `DRIFTLOOP_MODEL`"))
    monkeypatch.setattr(config_doc, "DOC_PATH", stale)
    assert main(["--check"]) == 1
    assert main([]) == 0
    assert main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == render_document()
