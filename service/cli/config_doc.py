"""The configuration reference, generated from `Settings`: `python -m service.cli.config_doc` rewrites
docs/configuration.md; `--check` fails if the file is stale; `--table` prints only the table.

The table sits between `<!-- config-table -->` and `<!-- /config-table -->`, so it can be pasted elsewhere
(README.md) and checked there too.
"""

from __future__ import annotations

import argparse
import sys
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from service.config import Settings

START, END = "<!-- config-table -->", "<!-- /config-table -->"
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

INTRO = """# Configuration

Every setting is an environment variable (or a line in `.env` in the working directory). Names are
`DRIFTLOOP_` + the setting in upper case; the MLflow tracking URI also reads MLflow's own
`MLFLOW_TRACKING_URI`. Lists are comma-separated; booleans are `true` / `false`.

This file is generated from `service/config.py` by `python -m service.cli.config_doc`; a test fails when
they differ.
"""

# Read by other libraries, not by `Settings`: (variables, used by, description).
OTHER_VARIABLES = [
    (
        "PROMETHEUS_MULTIPROC_DIR",
        "prometheus_client",
        "An empty, writable folder: `/metrics` then sums every uvicorn worker (set it when `--workers` > 1).",
    ),
    (
        "MLFLOW_TRACKING_TOKEN`, `MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD",
        "MLflow client",
        "Credentials of a protected tracking server.",
    ),
]


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables that set field `name`, preferred first.

    >>> env_names("model_name", Settings.model_fields["model_name"])
    ['DRIFTLOOP_MODEL_NAME']
    >>> env_names("mlflow_tracking_uri", Settings.model_fields["mlflow_tracking_uri"])
    ['MLFLOW_TRACKING_URI', 'DRIFTLOOP_MLFLOW_TRACKING_URI']
    """
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return [f"{prefix}{name}".upper()]


def all_env_names() -> dict[str, str]:
    """Every environment variable `Settings` reads, mapped to its field name."""
    return {env: name for name, field in Settings.model_fields.items() for env in env_names(name, field)}


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return None if field.default is PydanticUndefined else field.default


def env_value(value: Any) -> str:
    """A default as one would write it in `.env`.

    >>> env_value(True), env_value(2.0), env_value(["a", "b"]), env_value(Path("data"))
    ('true', '2.0', 'a,b', 'data')
    """
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return ",".join(env_value(v) for v in value)
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _choices(field: FieldInfo) -> list[str]:
    if typing.get_origin(field.annotation) is typing.Literal:
        return [str(v) for v in typing.get_args(field.annotation)]
    return []


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table() -> str:
    """The Markdown table: one row per setting, in declaration order."""
    lines = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        names = env_names(name, field)
        variable = " or ".join(f"`{n}`" for n in names)
        default = env_value(_default(field))
        shown = f"`{default}`" if default != "" else "*(empty)*"
        description = (field.description or "").strip()
        choices = _choices(field)
        if choices:
            description += " One of: " + ", ".join(f"`{c}`" for c in choices) + "."
        lines.append(f"| {variable} | {_cell(shown)} | {_cell(description)} |")
    return "\n".join([START, *lines, END]) + "\n"


def render_document() -> str:
    others = ["| Variable | Used by | Description |", "| --- | --- | --- |"]
    others += [f"| `{names}` | `{user}` | {text} |" for names, user, text in OTHER_VARIABLES]
    outro = "\nRead by other libraries, not by `Settings`:\n\n" + "\n".join(others) + "\n"
    return f"{INTRO}\n{render_table()}{outro}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/configuration.md from service.config.")
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is stale")
    parser.add_argument("--table", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    if args.table:
        sys.stdout.write(render_table())
        return 0
    document = render_document()
    if args.check:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
        if current != document:
            print(f"{DOC_PATH} is stale: run `python -m service.cli.config_doc`", file=sys.stderr)
            return 1
        return 0
    DOC_PATH.write_text(document, encoding="utf-8")
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
