"""Limits at the edge: message rate, connections per address, origins, client address. Pure.

Nothing here reads a clock or a socket: callers pass ``now`` (``time.monotonic()``), the peer
address and the request headers, so every decision is a plain function call in a test.

============================  ===============================================================
:class:`TokenBucket`          a rate with a burst; ``take(now)`` says whether one more fits
:class:`MessageRateLimiter`   per connection: allow, warn (error ``rate_limited``), close 4008
:class:`ConnectionLimiter`    connections per client address and in total; acquire / release
:func:`client_ip`             the client's address, through trusted proxies' X-Forwarded-For
:func:`origin_allowed`        the handshake's ``Origin`` against the allowlist
:class:`LimitsSettings`       every limit with its default (embedded in the edge settings)
============================  ===============================================================
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, model_validator

from pricewire_contracts import CloseCode

__all__ = [
    "ConnectionLimiter",
    "LimitsSettings",
    "MessageRateLimiter",
    "RateDecision",
    "Refusal",
    "TokenBucket",
    "client_ip",
    "limit_key",
    "origin_allowed",
    "subscription_weight",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: An IPv6 client usually owns a whole /64: counting per address would not limit it.
IPV6_LIMIT_PREFIX = 64


# -- settings --------------------------------------------------------------------------------


def _loopback() -> list[IPNetwork]:
    return [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


class LimitsSettings(BaseModel):
    """Every limit the edge enforces, with its default. Embedded in the edge settings as ``limits``.

    Environment variables (with the edge's nested delimiter ``__``)::

        PRICEWIRE_LIMITS__MAX_CONNECTIONS_PER_IP=20
        PRICEWIRE_LIMITS__TRUSTED_PROXIES='["10.0.0.0/8"]'
        PRICEWIRE_LIMITS__ALLOWED_ORIGINS='["self", "https://app.example.com"]'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_message_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest client message (a whole message, fragments included); past it: close 1009",
    )
    messages_per_s: float = Field(
        default=20.0, gt=0, description="Sustained client messages per second per connection"
    )
    message_burst: int = Field(
        default=40, ge=1, description="Client messages a connection may send at once"
    )
    rate_violations_to_close: int = Field(
        default=10,
        ge=1,
        description=(
            "Messages over the rate within rate_violation_window_s that close the connection "
            "(4008); each one before that is dropped and answered with error rate_limited"
        ),
    )
    rate_violation_window_s: float = Field(default=10.0, gt=0)
    max_subscriptions: int = Field(
        default=256,
        ge=1,
        description=(
            "Subscriptions per connection: a whole group counts 1, a prices subscription "
            "narrowed to symbols counts one per symbol; past it: error too_many_subscriptions"
        ),
    )
    max_connections_per_ip: int = Field(
        default=100,
        ge=1,
        description="Open connections per client address (IPv6: per /64); past it: close 1008",
    )
    max_connections: int = Field(
        default=10_000, ge=1, description="Open connections per edge; past it: close 1013"
    )
    idle_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="A connection with no message and no pong for this long is closed (4011)",
    )
    ping_interval_s: float = Field(
        default=20.0, gt=0, description="WebSocket ping to every client this often"
    )
    ping_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="No pong within this: the connection is half-open, closed with 1011",
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=_loopback,
        description=(
            "Networks whose X-Forwarded-For is believed (the dev gateway on loopback by "
            "default; the ingress pods' network in Kubernetes)"
        ),
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["self", "localhost"],
        description=(
            "Browser origins allowed to connect: 'self' (same host as the request), "
            "'localhost' (any port on localhost, 127.0.0.1, [::1]), 'https://host[:port]', "
            "'https://*.example.com', or '*'. Clients without an Origin header are allowed"
        ),
    )

    @model_validator(mode="after")
    def _check(self) -> LimitsSettings:
        if self.max_connections_per_ip > self.max_connections:
            raise ValueError("max_connections_per_ip cannot exceed max_connections")
        for pattern in self.allowed_origins:
            _parse_pattern(pattern)  # raises ValueError on a pattern that could never match
        return self

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        return origin_allowed(origin, host, allowed=self.allowed_origins)

    def client_ip(self, peer: str | None, headers: Headers) -> str:
        return client_ip(peer, headers, self.trusted_proxies)

    def rate_limiter(self, now: float) -> MessageRateLimiter:
        return MessageRateLimiter(
            rate=self.messages_per_s,
            burst=self.message_burst,
            max_violations=self.rate_violations_to_close,
            window_s=self.rate_violation_window_s,
            now=now,
        )

    def connection_limiter(self) -> ConnectionLimiter:
        return ConnectionLimiter(
            max_per_ip=self.max_connections_per_ip, max_total=self.max_connections
        )


# -- message rate ----------------------------------------------------------------------------------


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full.

    >>> bucket = TokenBucket(rate=2, burst=3, now=0.0)
    >>> [bucket.take(0.0) for _ in range(4)]
    [True, True, True, False]
    >>> bucket.take(0.5)  # one token came back
    True

    Over any span of ``t`` seconds it never grants more than ``burst + rate * t``.
    """

    rate: float
    burst: float
    now: float = 0.0
    tokens: float = field(init=False)
    _last: float = field(init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.tokens = float(self.burst)
        self._last = self.now

    def take(self, now: float, cost: float = 1.0) -> bool:
        if now > self._last:  # a clock going backwards refills nothing
            self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
            self._last = now
        # The epsilon absorbs float error, so a client sending at exactly the rate is never refused.
        if self.tokens + 1e-9 >= cost:
            self.tokens = max(0.0, self.tokens - cost)
            return True
        return False


class RateDecision(StrEnum):
    ALLOW = "allow"  #: handle the message
    WARN = "warn"  #: drop it and reply ``error`` with code ``rate_limited``
    CLOSE = "close"  #: close the connection with :attr:`CloseCode.RATE_LIMITED` (4008)


class MessageRateLimiter:
    """Per connection: a token bucket, then a close on persistent abuse.

    Every message over the rate is a violation: it is dropped and the client warned; the
    ``max_violations``-th violation within ``window_s`` closes the connection. A flooding
    client therefore gets at most ``max_violations - 1`` error replies, never one per message
    it sends.
    """

    __slots__ = ("_violations", "bucket", "max_violations", "window_s")

    def __init__(
        self, *, rate: float, burst: int, max_violations: int, window_s: float, now: float
    ) -> None:
        if max_violations < 1 or window_s <= 0:
            raise ValueError("max_violations >= 1 and window_s > 0 are required")
        self.bucket = TokenBucket(rate=rate, burst=burst, now=now)
        self.max_violations = max_violations
        self.window_s = window_s
        self._violations: deque[float] = deque()

    def check(self, now: float) -> RateDecision:
        if self.bucket.take(now):
            return RateDecision.ALLOW
        violations = self._violations
        while violations and violations[0] <= now - self.window_s:
            violations.popleft()
        violations.append(now)
        if len(violations) >= self.max_violations:
            return RateDecision.CLOSE
        return RateDecision.WARN


def subscription_weight(symbols: Collection[str] | None) -> int:
    """What one group subscription counts against ``max_subscriptions``: 1, or one per symbol."""
    return len(symbols) if symbols else 1


# -- connections -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a new connection is refused, and how to say it."""

    reason: Literal["per_ip", "global"]
    close_code: CloseCode
    #: The status for a refusal before the upgrade (plain HTTP).
    http_status: int
    message: str


_PER_IP = Refusal(
    reason="per_ip",
    close_code=CloseCode.POLICY_VIOLATION,
    http_status=429,
    message="too many connections from this address",
)
_GLOBAL = Refusal(
    reason="global",
    close_code=CloseCode.TRY_AGAIN_LATER,
    http_status=503,
    message="the server is at its connection limit; try again later",
)


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


class ConnectionLimiter:
    """Open connections per client address and in total.

    >>> limiter = ConnectionLimiter(max_per_ip=1, max_total=10)
    >>> limiter.acquire("192.0.2.1") is None
    True
    >>> limiter.acquire("192.0.2.1").close_code
    <CloseCode.POLICY_VIOLATION: 1008>
    >>> limiter.release("192.0.2.1")

    Call :meth:`release` exactly once for every successful :meth:`acquire`.
    """

    __slots__ = ("_by_key", "max_per_ip", "max_total", "total")

    def __init__(self, *, max_per_ip: int, max_total: int) -> None:
        self.max_per_ip = max_per_ip
        self.max_total = max_total
        self.total = 0
        self._by_key: dict[str, int] = {}

    def acquire(self, ip: str) -> Refusal | None:
        """Count one more connection from ``ip``; the refusal (nothing counted) if over a limit."""
        if self.total >= self.max_total:
            return _GLOBAL
        key = limit_key(ip)
        count = self._by_key.get(key, 0)
        if count >= self.max_per_ip:
            return _PER_IP
        self._by_key[key] = count + 1
        self.total += 1
        return None

    def release(self, ip: str) -> None:
        key = limit_key(ip)
        count = self._by_key.get(key, 0)
        if count <= 0:
            return  # a release without an acquire: ignore rather than go negative
        if count == 1:
            del self._by_key[key]  # keep memory proportional to the addresses connected now
        else:
            self._by_key[key] = count - 1
        self.total -= 1

    def count(self, ip: str) -> int:
        return self._by_key.get(limit_key(ip), 0)

    @property
    def addresses(self) -> int:
        return len(self._by_key)


# -- client address --------------------------------------------------------------------------------

#: Request headers as (name, value) pairs, duplicates kept, or a mapping (one value per name).
Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def _header_values(headers: Headers, name: str) -> list[str]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    return [value for key, value in pairs if key.lower() == wanted]


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


def client_ip(peer: str | None, headers: Headers, trusted_proxies: Sequence[IPNetwork]) -> str:
    """The client's address: the peer, or what trusted proxies say in ``X-Forwarded-For``.

    Only a peer inside ``trusted_proxies`` is believed. The header's entries are read from the
    right (the hop nearest this server); trusted proxies are skipped and the first untrusted
    address is the client. Anyone can write the left-hand entries, so they are never taken
    while an untrusted hop stands between them and us. A malformed entry stops the walk at the
    last address a trusted proxy vouched for.
    """
    peer_address = _parse_ip(peer) if peer else None
    if peer_address is None:
        return peer or "unknown"
    if not _trusted(peer_address, trusted_proxies):
        return str(peer_address)
    hops = [
        item for value in _header_values(headers, "x-forwarded-for") for item in value.split(",")
    ]
    current = peer_address
    for hop in reversed(hops):
        if not hop.strip():
            continue
        address = _parse_ip(hop)
        if address is None:
            break
        current = address
        if not _trusted(address, trusted_proxies):
            break
    return str(current)


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
