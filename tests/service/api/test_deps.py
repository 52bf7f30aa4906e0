"""Bearer checks on the raw header bytes, as uvicorn hands them to the app (the test client re-encodes
non-ASCII header bytes, so these are checked on the ASGI scope itself)."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from service.api.deps import _check

TOKEN = "s3cret-token-0123"


def _request(*values: bytes) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [(b"authorization", v) for v in values]}
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"Bearer s3cret-token-0123\xa0",  # NO-BREAK SPACE, as latin-1 on the wire: str.strip() removed it
        b"Bearer s3cret-token-0123\x85",  # NEXT LINE: also whitespace to str.strip()
        b"Bearer s3cret-token-0123\t",
        b"Bearer s3cret-token-0123 ",
        b"Bearer  s3cret-token-0123",
        b"Bearer \xa0s3cret-token-0123",
        b"Bearer\ts3cret-token-0123",
        b"Bearer ",
        b"Bearer",
        b"s3cret-token-0123",
    ],
)
def test_anything_but_the_exact_value_is_refused(raw: bytes) -> None:
    with pytest.raises(HTTPException) as refused:
        _check(_request(raw), TOKEN)
    assert refused.value.status_code in (401, 403)


def test_the_exact_value_passes_and_the_scheme_is_case_insensitive() -> None:
    for scheme in (b"Bearer ", b"bearer ", b"BEARER "):
        _check(_request(scheme + TOKEN.encode()), TOKEN)


def test_two_headers_are_a_400_even_if_one_is_right() -> None:
    good = b"Bearer " + TOKEN.encode()
    for pair in ((good, good), (good, b"Bearer x"), (b"Bearer x", good)):
        with pytest.raises(HTTPException) as refused:
            _check(_request(*pair), TOKEN)
        assert refused.value.status_code == 400
