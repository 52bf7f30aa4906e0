"""The receiver-side verification: the module and the example block in docs/webhooks.md."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.alerts.signing import signature
from service.alerts.verify import verify

DOC = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"
README = Path(__file__).resolve().parents[3] / "README.md"


def doc_verify(doc: Path = DOC) -> Callable[..., bool]:
    (block,) = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    namespace: dict[str, Any] = {}
    exec(compile(block, str(doc), "exec"), namespace)
    fn: Callable[..., bool] = namespace["verify"]
    return fn


@pytest.mark.parametrize(
    "check", [verify, doc_verify(), doc_verify(README)], ids=["module", "docs", "readme"]
)
def test_verify_accepts_fresh_signed_bodies_and_rejects_the_rest(check: Callable[..., bool]) -> None:
    secret, body = "whsec_abc0123456789", b'{"id":"e1","type":"drift.detected"}'
    now = int(time.time())
    good = signature(secret, now, body)
    assert check(secret, str(now), body, good)
    assert check(secret, now, body.decode(), good)
    assert check(secret, str(now), body, f"v1=deadbeef, {good}")  # several signatures (rotation)
    assert not check("whsec_other", str(now), body, good)
    assert not check(secret, str(now), body + b"\n", good)
    assert not check(secret, str(now + 1), body, good)  # timestamp is signed
    old = now - 301
    assert not check(secret, str(old), body, signature(secret, old, body))  # replay
    assert not check(secret, str(now + 301), body, signature(secret, now + 301, body))
    assert check(secret, str(old), body, signature(secret, old, body), tolerance=400)
    for junk in ("", "v1=", "v1=ünïcode", good.upper()):
        assert not check(secret, str(now), body, junk)
    assert not check(secret, "not-a-number", body, good)
