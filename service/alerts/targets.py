"""Which hosts a webhook may target: refuse link-local and cloud metadata, optionally private ranges.

Checked when a webhook is created or changed and again before every attempt, against every address the
host resolves to; the attempt then connects to the checked address itself, so a DNS answer that changes
in between (rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import functools
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
    # (host, port) where this service itself answers (its public URL, its listening address): a webhook
    # there would let an event call the API that raised it, e.g. rollback on `model.rolled_back`, forever.
    own: tuple[tuple[str, int], ...] = ()


def own_endpoints(public_url: str, host: str, port: int) -> tuple[tuple[str, int], ...]:
    """(host, port) of the service's public URL and of its listening address."""
    own = [(host, port)]
    try:
        parts = urlsplit(public_url)
        if parts.hostname:
            own.append((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)))
    except ValueError:
        pass
    return tuple(own)


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
    if ":" not in parts.hostname:  # an IPv6 literal is no name
        try:  # what the resolver will do with it: an invalid name would be a UnicodeError there (a 500)
            parts.hostname.encode("idna")
        except UnicodeError:
            raise TargetRefused("host is not a valid (internationalized) domain name") from None
    return parts


def _host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
        if host == entry:
            return True
    return False


_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use translation prefix
_EMBEDDING_96 = tuple(
    ipaddress.ip_network(n)
    for n in (
        "::ffff:0:0/96",  # IPv4-mapped (RFC 4291)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT, RFC 2765)
        "64:ff9b::/96",  # NAT64 well-known prefix (RFC 6052)
        "::/96",  # IPv4-compatible (deprecated, RFC 4291), e.g. ::169.254.169.254
    )
)


def _low32(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)


def embedded_ipv4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address `addr` may carry, by any standard embedding (each one is checked).

    IPv4-mapped, IPv4-translated, IPv4-compatible and NAT64 (RFC 6052: the last 32 bits for /96, bits
    48..88 around the u-octet for the /48 local-use prefix), 6to4 (2002::/16), Teredo (2001::/32: server
    and the de-obfuscated client) and ISATAP interface ids (::0:5efe:a.b.c.d, ::200:5efe:a.b.c.d).
    """
    found: list[ipaddress.IPv4Address] = []
    value = int(addr)
    if addr in ipaddress.ip_network("::/127"):
        return found  # :: and ::1 are IPv6 themselves (checked as such)
    if any(addr in net for net in _EMBEDDING_96):
        found.append(_low32(addr))
    if addr in _NAT64_LOCAL:  # the operator picks the prefix length inside it: try /48 and /96
        layouts = {
            ipaddress.IPv4Address(((value >> 64) & 0xFFFF) << 16 | (value >> 40) & 0xFFFF),
            _low32(addr),
        }
        found.extend(sorted(a for a in layouts if int(a)) or layouts)
    if addr.sixtofour is not None:
        found.append(addr.sixtofour)
    if addr.teredo is not None:
        found.extend(addr.teredo)
    if (value >> 32) & 0xFDFFFFFF == 0x00005EFE:  # ISATAP, u/l bit either way
        found.append(_low32(addr))
    return found


def _check_one(addr: IPAddress, policy: Policy, shown: str) -> None:
    if any(addr in net for net in _ALWAYS_FORBIDDEN):
        raise TargetRefused(f"address {shown} is link-local, metadata or not a host address")
    if not policy.allow_private and any(addr in net for net in _PRIVATE):
        raise TargetRefused(f"address {shown} is loopback/private (webhook_allow_private is false)")


def check_address(addr: IPAddress, policy: Policy) -> None:
    _check_one(addr, policy, str(addr))
    if isinstance(addr, ipaddress.IPv6Address):
        for inner in embedded_ipv4(addr):
            _check_one(inner, policy, f"{addr} (embeds {inner})")


def _forms(addr: IPAddress) -> list[IPAddress]:
    """`addr` and every IPv4 address it embeds: one host may be written many ways."""
    if isinstance(addr, ipaddress.IPv6Address):
        return [addr, *embedded_ipv4(addr)]
    return [addr]


def _wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::")


def check_not_self(host: str, port: int, addresses: list[IPAddress], policy: Policy) -> None:
    """Refuse the service's own endpoints on their port: the same host name, or an address the service
    listens on (for a wildcard or loopback listener: any loopback or unspecified address, and this
    machine's own addresses)."""
    host = host.lower().rstrip(".").strip("[]")
    for own_host, own_port in policy.own:
        own_host = own_host.lower().rstrip(".").strip("[]")
        if port != own_port:
            continue
        if host == own_host:
            raise TargetRefused(f"{host}:{port} is this service itself (a webhook would call its own API)")
        local = _wildcard(own_host) or _is_loopback_name(own_host)
        own = _local_addresses() if _wildcard(own_host) else _literal(own_host)
        for addr in addresses:
            forms = _forms(addr)
            if any(f == o for f in forms for o in own) or (
                local and any(f.is_loopback or f.is_unspecified for f in forms)
            ):
                raise TargetRefused(
                    f"address {addr} port {port} is where this service listens "
                    "(a webhook would call its own API)"
                )


def _is_loopback_name(host: str) -> bool:
    return any(a.is_loopback for a in _literal(host))


def _literal(host: str) -> list[IPAddress]:
    if host == "localhost":
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        return []


@functools.lru_cache(maxsize=1)
def _local_addresses() -> list[IPAddress]:
    """This machine's addresses as its own name resolves (best effort; loopback is covered separately)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


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
    check_not_self(host, port, [literal] if literal is not None else [], policy)
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
    check_not_self(host, port, addresses, policy)
    return addresses[0]
