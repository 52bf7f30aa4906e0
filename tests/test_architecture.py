"""The import rules of the design, checked on the source (import-linter checks them too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for name in imports_of(path):
            if name.split(".")[0] in forbidden or name.startswith(
                tuple(f + "." for f in forbidden if "." in f)
            ):
                found.append(f"{rel}: {name}")
    return found


def test_detectors_import_no_service_retrain_db_web_or_mlflow() -> None:
    assert offenders("detectors", ("service", "retrain", "mlflow", "sqlmodel", "sqlalchemy", "fastapi")) == []


def test_retrain_never_imports_service_or_the_database() -> None:
    assert offenders("retrain", ("service", "sqlmodel", "sqlalchemy", "fastapi")) == []


def test_only_service_main_imports_the_api() -> None:
    found = [
        f"{path.relative_to(ROOT)}"
        for path in (ROOT / "service").rglob("*.py")
        if not path.relative_to(ROOT).as_posix().startswith(("service/api/", "service/main.py"))
        and any(n == "service.api" or n.startswith("service.api.") for n in imports_of(path))
    ]
    assert found == []
