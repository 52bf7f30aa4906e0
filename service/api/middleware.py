"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path): body limit, the self-delivery
guard, `Allow` on 405 and request metrics (every answer counted, refusals included)."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from service import metrics
from service.alerts.signing import SIGNATURE_HEADER
from service.api.labels import request_labels

_SIGNED = SIGNATURE_HEADER.lower().encode()


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the streamed body passes the limit. An HTTPException, so FastAPI's body
    parser passes it on as the 413 it is (any other exception there becomes a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes (DRIFTLOOP_MAX_BODY_BYTES)")


class GuardAndMeasure:
    def __init__(self, app: Any, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint, model = request_labels(scope)
        status_holder = {"status": 500}
        started = time.perf_counter()
        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                status_holder["status"] = refusal[0]
                await _reject(send, *refusal)
                return
            await self._guarded(scope, receive, send, status_holder)
        finally:
            metrics.REQUESTS.labels(model, endpoint, str(status_holder["status"])).inc()
            metrics.LATENCY.labels(model, endpoint).observe(time.perf_counter() - started)

    def _refusal(self, scope: dict[str, Any]) -> tuple[int, str] | None:
        headers = scope["headers"]
        length = next((v for k, v in headers if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return 413, f"request body exceeds {self.max_body_bytes} bytes (DRIFTLOOP_MAX_BODY_BYTES)"
        if any(k == _SIGNED for k, _ in headers):
            # A signed delivery of our own webhooks: an event must never call the API (a rollback on
            # `model.rolled_back` would loop), whatever URL or proxy the webhook was pointed at.
            return 403, "driftloop webhook deliveries are not accepted by the driftloop API"
        return None

    async def _guarded(self, scope: dict[str, Any], receive: Any, send: Any, status: dict[str, int]) -> None:
        received = 0
        started = False

        async def guarded_receive() -> dict[str, Any]:
            nonlocal received
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                status["status"] = message["status"]
                if message["status"] == 405:
                    message = {**message, "headers": _with_allow(scope, message.get("headers", []))}
            await send(message)

        try:
            await self.app(scope, guarded_receive, send_wrapper)
        except BodyTooLarge as exc:  # raised where no handler answered it (outside a route)
            if not started:
                status["status"] = 413
                await _reject(send, 413, str(exc.detail))


def _with_allow(scope: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`Allow` lists every method the published schema gives the path: Starlette names only the first
    matching route's, and one path is often served by several routes (GET and POST /v1/webhooks)."""
    app = scope.get("app")
    methods = sorted({m for regex, ms in _paths(app) if regex.match(scope["path"]) for m in ms})
    if not methods:
        return list(headers)
    allow = ", ".join(methods).encode()
    return [(k, v) for k, v in headers if k.lower() != b"allow"] + [(b"allow", allow)]


_PATHS: dict[int, list[tuple[re.Pattern[str], set[str]]]] = {}


def _paths(app: Any) -> list[tuple[re.Pattern[str], set[str]]]:
    if app is None or not hasattr(app, "openapi"):
        return []
    if id(app) not in _PATHS:
        table = []
        for path, item in app.openapi().get("paths", {}).items():
            methods = {m.upper() for m in item if m in _METHODS}
            if "GET" in methods:
                methods.add("HEAD")  # Starlette answers HEAD for every GET route
            table.append((compile_path(path)[0], methods))
        _PATHS[id(app)] = table
    return _PATHS[id(app)]


_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


async def _reject(send: Any, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
