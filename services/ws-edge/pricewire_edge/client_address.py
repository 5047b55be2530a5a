"""Who the client is and where its page comes from: client address and ``Origin``. Pure.

================================  ===========================================================
:func:`client_ip`                 the client's address, through trusted proxies' X-Forwarded-For
:func:`trusted_peer`              whether the peer is one of those trusted proxies
:func:`judge_address`             an address as written: a trusted proxy?, and as printed
:func:`limit_key`                 the key connections are counted under (IPv6: the /64)
:func:`origin_allowed`            the handshake's ``Origin`` against the allowlist
:func:`check_origin_pattern`      an allowlist entry, validated (``ValueError``)
================================  ===========================================================

Callers pass the peer address and the request headers; nothing here reads a socket.
:class:`~pricewire_edge.limits.LimitsSettings` keeps :func:`judge_address`'s answers per
address (bounded) and hands them to :func:`client_ip`, so a connect storm does not redo the
``ipaddress`` work per connection.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, cast
from urllib.parse import urlsplit

__all__ = [
    "IPV6_LIMIT_PREFIX",
    "Headers",
    "IPNetwork",
    "Judge",
    "MultiHeaders",
    "check_origin_pattern",
    "client_ip",
    "judge_address",
    "limit_key",
    "origin_allowed",
    "trusted_peer",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: An IPv6 client usually owns a whole /64: counting per address would not limit it.
IPV6_LIMIT_PREFIX = 64


@functools.lru_cache(maxsize=4096)
def limit_key(ip: str) -> str:
    """The key connections are counted under: the address, or its /64 for IPv6."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_LIMIT_PREFIX), strict=False))
    return str(address)


# -- client address --------------------------------------------------------------------------------


class MultiHeaders(Protocol):
    """Request headers with a case-blind ``get_all`` (websockets' ``Headers``, the edge's
    :class:`~pricewire_edge.upgrade.UpgradeHeaders`)."""

    def get_all(self, key: str) -> list[str]: ...


#: Request headers: with ``get_all``, as (name, value) pairs (duplicates kept) or a mapping
#: (one value per name).
Headers = MultiHeaders | Mapping[str, str] | Iterable[tuple[str, str]]


def _header_values(headers: Headers, name: str) -> list[str]:
    get_all = getattr(headers, "get_all", None)  # websockets' Headers: a case-blind lookup
    if get_all is not None:
        return list(get_all(name))
    pairs = (
        headers.items()
        if isinstance(headers, Mapping)
        else cast(Iterable[tuple[str, str]], headers)
    )
    wanted = name.lower()
    return [value for key, value in pairs if key.lower() == wanted]


@functools.lru_cache(maxsize=4096)
def _parse_peer(peer: str) -> IPAddress | None:
    """A socket's peer address, parsed once per address (twice per connection otherwise)."""
    return _parse_ip(peer)


def _parse_ip(text: str) -> IPAddress | None:
    """An address from an X-Forwarded-For entry: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


#: An address as written (a peer, an X-Forwarded-For entry) -> (a trusted proxy?, the address
#: as printed), or ``None`` if it is no address: :func:`judge_address`, or a cache of it.
Judge = Callable[[str], tuple[bool, str] | None]


def judge_address(text: str, trusted_proxies: Sequence[IPNetwork]) -> tuple[bool, str] | None:
    """Whether the address written ``text`` is a trusted proxy, and the address as printed
    (IPv4-mapped IPv6 as IPv4, a port dropped); ``None`` if ``text`` is no address."""
    address = _parse_ip(text)
    if address is None:
        return None
    return _trusted(address, trusted_proxies), str(address)


def client_ip(
    peer: str | None,
    headers: Headers,
    trusted_proxies: Sequence[IPNetwork],
    *,
    judge: Judge | None = None,
) -> str:
    """The client's address: the peer, or what trusted proxies say in ``X-Forwarded-For``.

    Only a peer inside ``trusted_proxies`` is believed. The header's entries are read from the
    right (the hop nearest this server); trusted proxies are skipped and the first untrusted
    address is the client. Anyone can write the left-hand entries, so they are never taken
    while an untrusted hop stands between them and us. A malformed entry stops the walk at the
    last address a trusted proxy vouched for.

    ``judge`` (default: :func:`judge_address` against ``trusted_proxies``) decides each
    address; a caller that asks often passes a cache of it.
    """
    if judge is None:
        judge = functools.partial(judge_address, trusted_proxies=trusted_proxies)
    known = judge(peer) if peer else None
    if known is None:
        return peer or "unknown"
    trusted, current = known
    if not trusted:
        return current
    values = _header_values(headers, "x-forwarded-for")
    if not values:
        return current  # a trusted proxy (the dev gateway) that named no client: itself
    hops = [item for value in values for item in value.split(",")]
    for hop in reversed(hops):
        if not hop.strip():
            continue
        known = judge(hop)
        if known is None:
            break
        trusted, current = known
        if not trusted:
            break
    return current


def trusted_peer(peer: str | None, trusted_proxies: Sequence[IPNetwork]) -> bool:
    """Whether ``peer`` is a trusted proxy (whose clients are known only from the request)."""
    address = _parse_peer(peer) if peer else None
    return address is not None and _trusted(address, trusted_proxies)


# -- origin --------------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_LOCALHOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int | None


def _parse_origin(text: str) -> _Origin | None:
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    return _Origin(scheme, host, port if port is not None else _DEFAULT_PORTS[scheme])


def _parse_host(text: str) -> tuple[str, int | None] | None:
    """A ``Host`` header: ``example.com``, ``example.com:8000``, ``[::1]:8000``."""
    parsed = _parse_origin(f"http://{text.strip()}")
    if parsed is None:
        return None
    explicit_port = text.strip().rsplit("]", 1)[-1].count(":") == 1
    return parsed.host, parsed.port if explicit_port else None


def _parse_pattern(pattern: str) -> _Origin | Literal["self", "localhost", "*"]:
    if pattern == "self":
        return "self"
    if pattern == "localhost":
        return "localhost"
    if pattern == "*":
        return "*"
    wildcard = "://*." in pattern
    parsed = _parse_origin(pattern.replace("://*.", "://wildcard.", 1) if wildcard else pattern)
    if parsed is None:
        raise ValueError(f"allowed origin {pattern!r} is not 'self', 'localhost', '*' or an origin")
    if wildcard:
        return _Origin(parsed.scheme, "*." + parsed.host.removeprefix("wildcard."), parsed.port)
    return parsed


def _matches(origin: _Origin, pattern: _Origin) -> bool:
    if origin.scheme != pattern.scheme or origin.port != pattern.port:
        return False
    if pattern.host.startswith("*."):
        return origin.host.endswith(pattern.host[1:])
    return origin.host == pattern.host


def origin_allowed(origin: str | None, host: str | None, *, allowed: Iterable[str]) -> bool:
    """Whether a handshake with this ``Origin`` header may proceed (else: HTTP 403).

    No ``Origin`` header (a non-browser client): allowed. ``null`` (a sandboxed page, a file)
    and anything unparsable: refused unless ``*`` is allowed. ``self`` compares the origin's
    host and port with the request's ``Host`` header (scheme ignored: TLS may end at a proxy).
    """
    if origin is None:
        return True
    patterns = [_parse_pattern(p) for p in allowed]
    if "*" in patterns:
        return True
    parsed = _parse_origin(origin)
    if parsed is None:
        return False
    for pattern in patterns:
        if pattern == "localhost":
            if parsed.host.strip("[]") in _LOCALHOSTS:
                return True
        elif pattern == "self":
            target = _parse_host(host) if host else None
            # A Host without a port means a default port (of whichever scheme the page used).
            if (
                target is not None
                and target[0] == parsed.host
                and (target[1] == parsed.port or (target[1] is None and parsed.port in (80, 443)))
            ):
                return True
        elif isinstance(pattern, _Origin) and _matches(parsed, pattern):
            return True
    return False


def check_origin_pattern(pattern: str) -> None:
    """Raise ``ValueError`` on an allowlist entry that could never match."""
    _parse_pattern(pattern)
