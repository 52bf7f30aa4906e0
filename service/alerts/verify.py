"""Receiver side: check a driftloop webhook's signature (copy this function into your receiver).

Standard library only. `docs/webhooks.md` shows it in a receiver; a test runs that example.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def verify(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    signature: str,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """True if `signature` (the X-Driftloop-Signature header) signs `timestamp` and the raw `body`.

    Rejects timestamps further than `tolerance` seconds from now (replays); compares in constant time.
    The header may list several `v1=` values separated by commas (secret rotation).

    >>> import hashlib, hmac
    >>> mac = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    >>> verify("s3cret", "1700000000", b'{"a":1}', "v1=" + mac, now=1700000010)
    True
    >>> verify("s3cret", "1700000000", b'{"a":2}', "v1=" + mac, now=1700000010)
    False
    >>> verify("s3cret", "1700000000", b'{"a":1}', "v1=" + mac, now=1700000400)
    False
    """
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
    candidates = [part.strip().removeprefix("v1=") for part in signature.split(",") if part.strip()]
    # bytes: compare_digest refuses non-ASCII str, and the header is attacker-controlled
    return any(hmac.compare_digest(expected.encode(), c.encode()) for c in candidates)
