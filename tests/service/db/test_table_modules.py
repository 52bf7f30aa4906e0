"""Every table module can be the first one a process imports (a script, a migration, a scheduler)."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = [
    "service.db.tables",
    "service.db.lifecycle_tables",
    "service.db.model_tables",
    "service.db.rollback_tables",
    "service.serving.watched",
    "service.runtime",
]


@pytest.mark.parametrize("module", MODULES)
def test_the_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
