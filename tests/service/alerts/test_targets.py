"""Target policy: link-local/metadata always refused, private by setting, allowlist, DNS answers checked."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from service.alerts.dispatcher import backoff, policy_of
from service.alerts.targets import (
    Policy,
    TargetRefused,
    check_host,
    own_endpoints,
    parse_url,
    resolve_checked,
)
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


# --- IPv6 forms that embed an IPv4 address (issue 14, finding 5): each is checked as the IPv4 it carries ---

EMBEDDED_METADATA = {
    "IPv4-compatible": "::169.254.169.254",
    "IPv4-mapped": "::ffff:a9fe:a9fe",
    "IPv4-translated (SIIT)": "::ffff:0:a9fe:a9fe",
    "NAT64 well-known": "64:ff9b::a9fe:a9fe",
    "NAT64 local-use /48": "64:ff9b:1:a9fe:a9:fe00::",  # RFC 6052 /48: v4 around the u-octet
    "NAT64 local-use /96": "64:ff9b:1::a9fe:a9fe",
    "6to4": "2002:a9fe:a9fe::1",
    "Teredo server": "2001:0:a9fe:a9fe::1",
    "Teredo client": "2001:0:4136:e378:8000:63bf:5601:5601",  # client = ~0x56015601 = 169.254.169.254
    "ISATAP": "2001:db8::5efe:a9fe:a9fe",
}
EMBEDDED_LOOPBACK = {
    "IPv4-compatible": "::127.0.0.1",
    "IPv4-mapped": "::ffff:127.0.0.1",
    "NAT64 well-known": "64:ff9b::7f00:1",
    "NAT64 local-use /96": "64:ff9b:1::7f00:1",
    "6to4": "2002:7f00:1::1",
    "Teredo client": "2001:0:4136:e378:8000:63bf:80ff:fffe",  # client = ~0x80fffffe = 127.0.0.1
}


@pytest.mark.parametrize("form", list(EMBEDDED_METADATA))
def test_ipv6_embeddings_of_metadata_are_always_refused(form: str) -> None:
    for policy in (OPEN, CLOSED):
        with pytest.raises(TargetRefused, match="embeds 169.254.169.254"):
            check_host(EMBEDDED_METADATA[form], policy)


@pytest.mark.parametrize("form", list(EMBEDDED_LOOPBACK))
def test_ipv6_embeddings_of_loopback_follow_the_private_setting(form: str) -> None:
    with pytest.raises(TargetRefused, match=r"embeds 127\.0\.0\.1.*private"):
        check_host(EMBEDDED_LOOPBACK[form], CLOSED)


def test_embeddings_of_public_addresses_pass() -> None:
    # DNS64 networks answer public receivers as 64:ff9b::<ipv4>: those must keep working
    for host in ("64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "2606:4700::1111"):
        assert check_host(host, CLOSED) == ipaddress.ip_address(host)


# --- the service itself is never a target (finding 4) ---

SELF = Policy(own=own_endpoints("https://driftloop.example.com", "127.0.0.1", 8000))
WILDCARD = Policy(own=own_endpoints("http://127.0.0.1:8000", "0.0.0.0", 9000))


@pytest.mark.parametrize(
    ("policy", "url"),
    [
        (SELF, "http://127.0.0.1:8000/v1/models/rollback"),
        (SELF, "http://localhost:8000/v1/models/rollback"),
        (SELF, "http://[::1]:8000/x"),
        (SELF, "http://[::ffff:127.0.0.1]:8000/x"),
        (SELF, "http://[::127.0.0.1]:8000/x"),
        (SELF, "http://[64:ff9b::7f00:1]:8000/x"),
        (SELF, "https://driftloop.example.com/v1/models/rollback"),
        (SELF, "https://DRIFTLOOP.example.com.:443/x"),
        (WILDCARD, "http://127.0.0.2:9000/x"),
        (WILDCARD, "http://127.0.0.1:8000/x"),  # the public URL
    ],
)
def test_own_public_url_and_listening_address_are_refused(policy: Policy, url: str) -> None:
    parts = parse_url(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with pytest.raises(TargetRefused, match="this service"):
        asyncio.run(resolve_checked(parts.hostname or "", port, policy, timeout=2))


def test_other_ports_of_the_same_host_pass() -> None:
    address = asyncio.run(resolve_checked("127.0.0.1", 8001, SELF, timeout=2))
    assert address == ipaddress.ip_address("127.0.0.1")


def test_dispatcher_policy_knows_the_service_endpoints() -> None:
    settings = Settings(public_url="https://dl.example.com", host="0.0.0.0", port=8123)
    assert set(policy_of(settings).own) == {("dl.example.com", 443), ("0.0.0.0", 8123)}


@pytest.mark.parametrize("url", ["http://\ufff9/", "HTTP://\ufff9", "http://" + "a" * 64 + ".example/"])
def test_names_the_resolver_cannot_encode_are_refused_not_a_500(url: str) -> None:
    # found by schemathesis: getaddrinfo raised UnicodeError (idna) for these, a 500 at webhook creation
    with pytest.raises(TargetRefused, match="domain name"):
        parse_url(url)
