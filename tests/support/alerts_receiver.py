"""A real HTTP webhook receiver on loopback for the alert tests (threaded, so a hanging request blocks
only itself). It verifies signatures and dedupes by event id, as the docs tell receivers to."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import sqlalchemy as sa

from service.alerts.dispatcher import claim_due, deliver, make_client
from service.alerts.verify import verify
from service.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool | None


@dataclass
class Receiver:
    secret: str | None = None
    status: int = 200
    hang_seconds: float = 0.0
    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)  # event id -> times processed (dedupe)

    def __post_init__(self) -> None:
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver._record(headers, body)
                if receiver.hang_seconds:
                    receiver._release.wait(receiver.hang_seconds)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _record(self, headers: dict[str, str], body: bytes) -> None:
        verified = None
        if self.secret is not None:
            verified = verify(
                self.secret,
                headers.get("x-driftloop-timestamp", ""),
                body,
                headers.get("x-driftloop-signature", ""),
            )
        with self._lock:
            self.requests.append(Received(headers, body, time.monotonic(), verified))
            if self.status < 300 and verified is not False:
                event_id = headers.get("x-driftloop-event-id", "")
                self.events[event_id] = self.events.get(event_id, 0) + 1

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


async def dispatch_due(engine: sa.Engine, settings: Settings) -> int:
    """One delivery pass, as the dispatcher makes it: claim what is due, send it all; the attempts made."""
    claimed = await asyncio.to_thread(
        claim_due, engine, settings=settings, limit=settings.webhook_concurrency
    )
    if not claimed:
        return 0
    async with make_client() as client:
        await asyncio.gather(*(deliver(client, engine, c, settings) for c in claimed))
    return len(claimed)
