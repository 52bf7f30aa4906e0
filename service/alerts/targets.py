"""Which hosts a webhook may target: refuse link-local and cloud metadata, optionally private ranges.

Checked when a webhook is created or changed and again before every attempt, against every address the
host resolves to; the attempt then connects to the checked address itself, so a DNS answer that changes
in between (rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Never reachable as a target, whatever the settings: metadata services and addresses that are not a host.
_ALWAYS_FORBIDDEN = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this host": connects to loopback on Linux
        "169.254.0.0/16",  # link-local, AWS/GCP/Azure/OpenStack metadata 169.254.169.254
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "168.63.129.16/32",  # Azure wire server
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS IPv6 metadata
        "ff00::/8",  # IPv6 multicast
    )
)
# Loopback and private ranges: allowed only with `webhook_allow_private` (the local-receiver default).
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT
        "198.18.0.0/15",
        "::1/128",
        "fc00::/7",
    )
)
_FORBIDDEN_NAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "metadata.azure.internal", "instance-data"}
)


class TargetRefused(ValueError):
    """The URL is not an acceptable webhook target (the message says why)."""


@dataclass(frozen=True)
class Policy:
    allowed_hosts: tuple[str, ...] = ()
    allow_private: bool = True


def parse_url(url: str) -> SplitResult:
    """Structural checks: http(s), a host, no credentials, a valid port."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("scheme must be http or https")
    if not parts.hostname:
        raise TargetRefused("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("credentials in the URL are not accepted (they would be shown); use the secret")
    try:
        _ = parts.port
    except ValueError as exc:
        raise TargetRefused(f"invalid port: {exc}") from None
    if any(c.isspace() for c in url.strip()):
        raise TargetRefused("URL contains whitespace")
    return parts


def _host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
        if host == entry:
            return True
    return False


def _normalize(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped or addr.sixtofour
        if mapped is not None:
            return mapped
    return addr


def check_address(addr: IPAddress, policy: Policy) -> None:
    addr = _normalize(addr)
    if any(addr in net for net in _ALWAYS_FORBIDDEN):
        raise TargetRefused(f"address {addr} is link-local, metadata or not a host address")
    if not policy.allow_private and any(addr in net for net in _PRIVATE):
        raise TargetRefused(f"address {addr} is loopback/private (webhook_allow_private is false)")


def check_host(host: str, policy: Policy) -> IPAddress | None:
    """Checks that need no DNS; returns the address when the host is an IP literal."""
    host = host.lower().rstrip(".")
    if host in _FORBIDDEN_NAMES:
        raise TargetRefused(f"host {host} is a cloud metadata service")
    if policy.allowed_hosts and not _host_allowed(host, policy.allowed_hosts):
        raise TargetRefused(f"host {host} is not in webhook_allowed_hosts")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    check_address(addr, policy)
    return addr


async def resolve_checked(host: str, port: int, policy: Policy, *, timeout: float) -> IPAddress:
    """Resolve `host`; refuse if ANY address is forbidden; return the first one to connect to.

    Raises `TargetRefused` (permanent) or `OSError`/`TimeoutError` (DNS trouble, worth retrying).
    """
    literal = check_host(host, policy)
    if literal is not None:
        return literal
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), timeout
    )
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise OSError(f"{host} resolved to no address")
    for addr in addresses:
        check_address(addr, policy)
    return addresses[0]
