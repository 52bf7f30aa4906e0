"""The real app under uvicorn on a loopback port, in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from service.app import create_app
from service.config import Settings
from tests.support.core import FakeRegistry


def serve(settings: Settings, registry: FakeRegistry) -> Iterator[str]:
    """Run the app under uvicorn in a thread; yield its base URL; stop it."""
    app = create_app(settings, loader=(registry.resolve, registry.fetch))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # the server takes the bound socket: no free-port race
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
