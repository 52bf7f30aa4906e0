"""/docs and /redoc render in Chromium with every request off the server blocked (no CDN, no internet)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from tests.browser.server import serve
from tests.support.core import FakeRegistry

pytestmark = pytest.mark.browser


@pytest.fixture
def base(tmp_path: Path, sqlite_url: str, fake_registry: FakeRegistry) -> Iterator[str]:
    settings = Settings(
        data_dir=tmp_path, database_url=sqlite_url, model_name="demo", embedded_scheduler=False
    )
    yield from serve(settings, fake_registry)


def _offline_page(browser: Any, base: str) -> tuple[Any, list[str], list[str]]:
    """A page whose requests to anywhere but the server are aborted (and recorded)."""
    page = browser.new_page()
    blocked: list[str] = []
    errors: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith((base, "data:", "blob:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort("internetdisconnected")

    page.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, blocked, errors


def test_swagger_ui_renders_the_operations_offline(browser: Any, base: str) -> None:
    page, blocked, errors = _offline_page(browser, base)
    response = page.goto(base + "/docs")
    assert response is not None and response.status == 200
    operation = page.locator("#operations-serving-invocations_invocations_post")
    operation.wait_for(state="visible", timeout=15_000)
    assert page.locator(".opblock-summary-path", has_text="/v1/predict").first.is_visible()
    assert page.locator(".opblock").count() > 20  # every route, not an empty shell
    operation.click()  # an operation opens and shows the content types it takes
    page.get_by_text("text/csv").first.wait_for(state="attached", timeout=5_000)
    assert blocked == [] and errors == []


def test_redoc_renders_offline(browser: Any, base: str) -> None:
    page, blocked, errors = _offline_page(browser, base)
    response = page.goto(base + "/redoc")
    assert response is not None and response.status == 200
    page.locator("h1", has_text="driftloop").first.wait_for(state="visible", timeout=15_000)
    assert page.locator("[data-section-id='tag/serving']").count() == 1
    # ReDoc's "API docs by Redocly" footer logo is its one remote image; the page does not need it
    assert [u for u in blocked if not u.endswith("/redoc/logo-mini.svg")] == [] and errors == []
