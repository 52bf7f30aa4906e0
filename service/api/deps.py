"""Request dependencies: the runtime, DB sessions and bearer-token checks."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlmodel import Session

from service.runtime import Runtime


# Cheap dependencies are `async def`: FastAPI runs a sync one in the thread pool, two thread hops per request.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with Session(runtime.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


_SCHEME = b"bearer "


def _authorization(request: Request) -> bytes | None:
    """The raw value of the one Authorization header; two or more are a 400 (RFC 9110 section 5.3: a
    singleton field; which one a proxy or framework honours differs, so none is)."""
    values = [v for k, v in request.scope["headers"] if k.lower() == b"authorization"]
    if len(values) > 1:
        raise HTTPException(400, "send exactly one Authorization header")
    return values[0] if values else None


def _check(request: Request, expected: str) -> None:
    # The raw bytes, compared whole: no strip, no decoding, so "tok\u00a0", "tok\x85" or a tab or a
    # second space after the scheme never equal the token. Only the scheme is case-insensitive (RFC 9110).
    header = _authorization(request)
    if header is None or header[: len(_SCHEME)].lower() != _SCHEME or len(header) == len(_SCHEME):
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(header[len(_SCHEME) :], expected.encode()):
        raise HTTPException(403, "invalid bearer token")


async def require_admin(request: Request, runtime: RuntimeDep) -> None:
    settings = runtime.settings
    if settings.admin_token:
        _check(request, settings.admin_token)
    elif not settings.admin_open:
        raise HTTPException(
            403,
            "admin endpoints are disabled: set DRIFTLOOP_ADMIN_TOKEN "
            "(or DRIFTLOOP_ADMIN_OPEN=true for local use)",
        )


async def require_client(request: Request, runtime: RuntimeDep) -> None:
    if runtime.settings.predict_token:
        _check(request, runtime.settings.predict_token)


AdminDep = Depends(require_admin)
ClientDep = Depends(require_client)
