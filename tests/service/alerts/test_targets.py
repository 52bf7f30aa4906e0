"""Target policy: link-local/metadata always refused, private by setting, allowlist, DNS answers checked."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from service.alerts.dispatcher import backoff
from service.alerts.targets import Policy, TargetRefused, check_host, parse_url, resolve_checked
from service.config import Settings

OPEN = Policy()
CLOSED = Policy(allow_private=False)


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "169.254.0.1",
        "100.100.100.200",
        "168.63.129.16",
        "0.0.0.0",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254
        "224.0.0.1",
        "metadata.google.internal",
        "METADATA.GOOGLE.INTERNAL.",
    ],
)
def test_link_local_and_metadata_always_refused(host: str) -> None:
    for policy in (OPEN, CLOSED, Policy(allowed_hosts=(host,))):
        with pytest.raises(TargetRefused):
            check_host(host, policy)


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.5", "172.20.1.1", "192.168.1.1", "::1", "fd12::1"])
def test_private_ranges_follow_the_setting(host: str) -> None:
    assert check_host(host, OPEN) == ipaddress.ip_address(host)
    with pytest.raises(TargetRefused, match="private"):
        check_host(host, CLOSED)


def test_public_addresses_and_names_pass() -> None:
    assert check_host("8.8.8.8", CLOSED) == ipaddress.ip_address("8.8.8.8")
    assert check_host("hooks.slack.com", CLOSED) is None  # a name: checked again after resolution


def test_allowlist_exact_and_wildcard() -> None:
    policy = Policy(allowed_hosts=("hooks.slack.com", "*.corp.example"))
    assert check_host("hooks.slack.com", policy) is None
    assert check_host("ci.corp.example", policy) is None
    for host in ("evil.com", "corp.example.evil.com", "xcorp.example", "127.0.0.1"):
        with pytest.raises(TargetRefused, match="webhook_allowed_hosts"):
            check_host(host, policy)


@pytest.mark.parametrize(
    "url",
    ["ftp://a/b", "a/b", "http://", "https://u:p@h/", "http://h:70000/", "http://h/a b", "javascript:x"],
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(TargetRefused):
        parse_url(url)


def test_every_resolved_address_is_checked() -> None:
    # `localhost` resolves to loopback: refused when private targets are off, accepted when on
    assert asyncio.run(resolve_checked("localhost", 80, OPEN, timeout=2)).is_loopback
    with pytest.raises(TargetRefused, match="private"):
        asyncio.run(resolve_checked("localhost", 80, CLOSED, timeout=2))


def test_backoff_doubles_with_jitter_and_cap() -> None:
    settings = Settings(webhook_backoff_seconds=2.0, webhook_backoff_max_seconds=20.0)
    for attempts, full in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 20.0), (9, 20.0)]:
        delays = [backoff(settings, attempts) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 10  # jittered, not fixed
