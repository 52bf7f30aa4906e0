"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path): body limit and request metrics."""

from __future__ import annotations

import time
from typing import Any

import orjson

from service import metrics

_TRACKED = {"/v1/predict": "predict", "/invocations": "invocations", "/v1/feedback": "feedback"}


class GuardAndMeasure:
    def __init__(self, app: Any, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _reject(
                send, 413, f"request body exceeds {self.max_body_bytes} bytes (DRIFTLOOP_MAX_BODY_BYTES)"
            )
            return
        received = 0
        too_large = False

        async def guarded_receive() -> dict[str, Any]:
            nonlocal received, too_large
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    raise BodyTooLarge
            return message

        endpoint = _TRACKED.get(scope["path"], "other")
        status_holder = {"status": 500}
        started = time.perf_counter()

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, guarded_receive, send_wrapper)
        except BodyTooLarge:
            if too_large:
                await _reject(send, 413, f"request body exceeds {self.max_body_bytes} bytes")
                status_holder["status"] = 413
        finally:
            metrics.REQUESTS.labels(endpoint, str(status_holder["status"])).inc()
            metrics.LATENCY.labels(endpoint).observe(time.perf_counter() - started)


class BodyTooLarge(Exception):
    pass


async def _reject(send: Any, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
