"""HMAC-SHA256 signatures of webhook bodies (receivers verify with `service.alerts.verify.verify`)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Driftloop-Signature"
TIMESTAMP_HEADER = "X-Driftloop-Timestamp"
EVENT_ID_HEADER = "X-Driftloop-Event-Id"
EVENT_TYPE_HEADER = "X-Driftloop-Event-Type"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 over `f"{timestamp}.{body}"` keyed with the webhook secret.

    >>> signature("s3cret", 1700000000, b'{"a":1}')[:19]
    'v1=1698a50bc74d1ff1'
    """
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signed_headers(
    *, secret: str, timestamp: int, body: bytes, event_id: str, event_type: str
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "driftloop-webhooks/1",
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        TIMESTAMP_HEADER: str(timestamp),
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: event_type,
    }
