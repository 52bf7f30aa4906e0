"""Access: the optional predict/feedback token, and secrets that never leave the process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.core import sample_records

ADMIN_TOKEN = "adm-7f3c9e21d4b85a60"
PREDICT_TOKEN = "prd-1b2c3d4e5f60718293"
WEBHOOK_SECRET = "whk-secret-5a6b7c8d9e0f1a2b3c4d"
SECRETS = (ADMIN_TOKEN, PREDICT_TOKEN, WEBHOOK_SECRET)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/v1/predict", "/invocations", "/v1/feedback"])
def test_predict_token_is_required_when_set(
    make_client: Callable[..., Any], sqlite_url: str, path: str
) -> None:
    record = sample_records(1)[0]
    with make_client(sqlite_url, predict_token=PREDICT_TOKEN, admin_token=ADMIN_TOKEN) as client:
        pid = client.post("/v1/predict", json={"features": record}, headers=_bearer(PREDICT_TOKEN))
        assert pid.status_code == 200
        body = {
            "/v1/predict": {"features": record},
            "/invocations": {"dataframe_records": [record]},
            "/v1/feedback": {"items": [{"prediction_id": pid.json()["predictions"][0]["prediction_id"],
                                        "label": 1}]},
        }[path]  # fmt: skip
        missing = client.post(path, json=body)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        for wrong in (
            {"Authorization": "Bearer nope"},
            _bearer(ADMIN_TOKEN),
            {"Authorization": PREDICT_TOKEN},
        ):
            r = client.post(path, json=body, headers=wrong)
            # a token in the wrong scheme counts as missing; a wrong bearer (even the admin one) is refused
            assert r.status_code == (401 if "Bearer" not in wrong["Authorization"] else 403), r.text
        ok = client.post(path, json=body, headers=_bearer(PREDICT_TOKEN))
        assert ok.status_code == 200, ok.text
        # health and metrics stay open for probes and scrapers
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_predict_is_open_without_a_token(make_client: Callable[..., Any], sqlite_url: str) -> None:
    with make_client(sqlite_url) as client:
        r = client.post("/v1/predict", json={"features": sample_records(1)[0]})
    assert r.status_code == 200


def test_secrets_never_appear_in_responses_or_logs(
    make_client: Callable[..., Any], sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    record = sample_records(1)[0]
    seen: list[str] = []

    def keep(r: Any) -> Any:
        seen.append(r.text)
        seen.append(repr(dict(r.headers)))
        return r

    with make_client(sqlite_url, predict_token=PREDICT_TOKEN, admin_token=ADMIN_TOKEN) as client:
        admin, user = _bearer(ADMIN_TOKEN), _bearer(PREDICT_TOKEN)
        hook = keep(client.post("/v1/webhooks", headers=admin, json={
            "url": "http://127.0.0.1:9/hook", "secret": WEBHOOK_SECRET, "event_types": ["*"]}))  # fmt: skip
        assert hook.status_code == 201, hook.text
        hook_id = hook.json()["id"]
        keep(client.patch(f"/v1/webhooks/{hook_id}", headers=admin, json={"secret": WEBHOOK_SECRET[::-1]}))
        keep(
            client.post(
                "/v1/webhooks", headers=admin, json={"url": "http://127.0.0.1:9/x", "secret": "short"}
            )
        )
        keep(client.post(f"/v1/webhooks/{hook_id}/test", headers=admin))
        for path in ("", f"/{hook_id}", f"/{hook_id}/deliveries"):
            keep(client.get(f"/v1/webhooks{path}", headers=admin))
        keep(client.post("/v1/predict", headers=user, json={"features": record}))
        keep(client.post("/v1/predict", headers=_bearer(ADMIN_TOKEN), json={"features": record}))
        keep(client.post("/v1/retrain", headers=_bearer(PREDICT_TOKEN), json={"reason": "x"}))
        keep(client.post("/v1/retrain", headers=_bearer(ADMIN_TOKEN + "x"), json={"reason": "x"}))
        for path in ("/healthz", "/readyz", "/metrics", "/v1/drift/runs", "/v1/episodes",
                     "/v1/dashboard/data", "/openapi.json", "/v1/retrain/jobs"):  # fmt: skip
            keep(client.get(path, headers=admin))
    text = "\n".join(seen) + "\n".join(r.getMessage() + str(r.args) for r in caplog.records) + caplog.text
    assert len(seen) > 20 and caplog.records  # we did look at something
    for secret in (*SECRETS, WEBHOOK_SECRET[::-1]):
        assert secret not in text


# --- exact token comparison (issue 14, finding 6) ---


@pytest.mark.parametrize(
    "header",
    [
        b"Bearer " + PREDICT_TOKEN.encode() + b"\xa0",  # NO-BREAK SPACE after the token
        b"Bearer " + PREDICT_TOKEN.encode() + b"\x85",  # NEXT LINE (str.strip() removes it)
        b"Bearer " + PREDICT_TOKEN.encode() + b"\t",
        b"Bearer " + PREDICT_TOKEN.encode() + b" ",
        b"Bearer  " + PREDICT_TOKEN.encode(),  # double space
        b"Bearer\t" + PREDICT_TOKEN.encode(),
        b"Bearer " + PREDICT_TOKEN.encode()[:-1],
        b"Bearer " + PREDICT_TOKEN.encode() + b"x",
    ],
)
def test_the_raw_header_must_equal_bearer_and_the_token(
    make_client: Callable[..., Any], sqlite_url: str, header: bytes
) -> None:
    record = sample_records(1)[0]
    with make_client(sqlite_url, predict_token=PREDICT_TOKEN) as client:
        r = client.post("/v1/predict", json={"features": record}, headers=[(b"authorization", header)])
        assert r.status_code in (401, 403), (header, r.status_code)
        # the scheme is case-insensitive (RFC 9110 section 11.1); nothing else is
        ok = client.post("/v1/predict", json={"features": record},
                         headers=[(b"authorization", b"bearer " + PREDICT_TOKEN.encode())])  # fmt: skip
        assert ok.status_code == 200, ok.text


def test_two_authorization_headers_are_a_400(make_client: Callable[..., Any], sqlite_url: str) -> None:
    record = sample_records(1)[0]
    good = b"Bearer " + PREDICT_TOKEN.encode()
    with make_client(sqlite_url, predict_token=PREDICT_TOKEN, admin_token=ADMIN_TOKEN) as client:
        for path, body in (("/v1/predict", {"features": record}),
                           ("/invocations", {"dataframe_records": [record]})):  # fmt: skip
            for pair in ((good, b"Bearer nope"), (b"Bearer nope", good), (good, good)):
                headers = [(b"authorization", pair[0]), (b"authorization", pair[1])]
                r = client.post(path, json=body, headers=headers)
                assert r.status_code == 400 and "exactly one Authorization" in r.text, r.text
        admin = b"Bearer " + ADMIN_TOKEN.encode()
        r = client.post("/v1/retrain", json={"reason": "x"},
                        headers=[(b"authorization", admin), (b"authorization", admin)])  # fmt: skip
        assert r.status_code == 400


def test_a_secret_or_token_of_the_wrong_type_is_never_echoed(
    make_client: Callable[..., Any], sqlite_url: str
) -> None:
    with make_client(sqlite_url, admin_token=ADMIN_TOKEN) as client:
        admin = _bearer(ADMIN_TOKEN)
        for body in (
            {"url": "http://127.0.0.1:9/x", "event_types": ["*"], "secret": [WEBHOOK_SECRET]},
            {"url": "http://127.0.0.1:9/x", "event_types": ["*"], "secret": {"v": WEBHOOK_SECRET}},
            {"url": "http://127.0.0.1:9/x", "event_types": ["*"], "secret": 12345678901234567890},
            {"url": "http://127.0.0.1:9/x", "event_types": ["*"], "token": WEBHOOK_SECRET},  # extra field
        ):
            r = client.post("/v1/webhooks", headers=admin, json=body)
            assert r.status_code == 422, r.text
            assert WEBHOOK_SECRET not in r.text and "12345678901234567890" not in r.text, r.text
            assert any("secret" in e["loc"] or "token" in e["loc"] for e in r.json()["detail"])
        r = client.post("/v1/webhooks", headers=admin, json=[{"secret": WEBHOOK_SECRET}])  # whole body echoed
        assert r.status_code == 422 and WEBHOOK_SECRET not in r.text, r.text
