"""`driftloop retention`: the scheduler's rollup + retention job, run once by hand."""

from __future__ import annotations

from typer.testing import CliRunner

from service.cli.main import app
from tests.service.cli.test_export import model  # noqa: F401  (the fixture: 300 rows of 2026-05, 40 labeled)

runner = CliRunner()


def test_retention_command_runs_the_job_once(model: str) -> None:  # noqa: F811
    result = runner.invoke(app, ["retention", "--model", model])
    assert result.exit_code == 0, result.output
    # every row is older than 180 days: all go but the version's newest
    assert "deleted 299 predictions (40 labeled)" in result.stdout
    again = runner.invoke(app, ["retention", "--model", model])
    assert again.exit_code == 0 and "deleted 0 predictions" in again.stdout
