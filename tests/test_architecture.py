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
        if not path.relative_to(ROOT).as_posix().startswith(("service/api/", "service/app.py"))
        and any(n == "service.api" or n.startswith("service.api.") for n in imports_of(path))
    ]
    assert found == []


DOMAIN = ("serving", "monitor", "alerts", "retraining", "db", "dashboard")


def test_domain_packages_raise_domain_errors_not_http_ones() -> None:
    # the API maps domain errors to HTTP (service/api/errors.py); domain code never imports the web layer
    found = [f for pkg in DOMAIN for f in offenders(f"service/{pkg}", ("fastapi", "starlette"))]
    assert found == []


def test_service_is_one_package_per_concern_with_small_modules() -> None:
    top = sorted(p.name for p in (ROOT / "service").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 8, top
    long = {
        path.relative_to(ROOT).as_posix(): n
        for path in (ROOT / "service").rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 300
    }
    assert long == {}


def test_tests_mirror_the_service_packages() -> None:
    packages = {p.name for p in (ROOT / "service").iterdir() if (p / "__init__.py").exists()}
    tested = {
        p.name for p in (ROOT / "tests" / "service").iterdir() if p.is_dir() and any(p.glob("test_*.py"))
    }
    assert packages <= tested, sorted(packages - tested)
