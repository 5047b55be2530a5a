"""Limits at the edge: the settings, and connections per client address and in total. Pure.

Nothing here reads a clock or a socket: callers pass ``now`` (``time.monotonic()``), the peer
address and the request headers, so every decision is a plain function call in a test.

============================  ===============================================================
:class:`LimitsSettings`       every limit with its default (embedded in the edge settings)
:class:`ConnectionLimiter`    connections per client address and in total; acquire / release
:class:`Refusal`              why a connection is refused, and how to say it (HTTP / close)
============================  ===============================================================

The rest lives beside it and is re-exported here: the message rate (:mod:`.message_rate`:
:class:`TokenBucket`, :class:`MessageRateLimiter`) and the client's address and origin
(:mod:`.client_address`: :func:`client_ip`, :func:`origin_allowed`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, PrivateAttr, model_validator

from pricewire_contracts import CloseCode

from .client_address import (
    IPV6_LIMIT_PREFIX,
    Headers,
    IPNetwork,
    check_origin_pattern,
    client_ip,
    judge_address,
    limit_key,
    origin_allowed,
)
from .message_rate import MessageRateLimiter, RateDecision, TokenBucket, subscription_weight

__all__ = [
    "IPV6_LIMIT_PREFIX",
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


# -- settings --------------------------------------------------------------------------------


def _loopback() -> list[IPNetwork]:
    return [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


#: Addresses (peers, X-Forwarded-For entries) whose trust and printed form are kept (cleared
#: when full: a client writing a new address per request only makes the edge judge it again).
_ADDRESSES_KEPT = 4096


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
        description=(
            "Open connections per client address (IPv6: per /64), those still handshaking "
            "included; past it: close 1008 after the upgrade (HTTP 429 while many are refused)"
        ),
    )
    max_connections: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Open connections per edge, handshaking ones included; past it: close 1013 "
            "after the upgrade (HTTP 503 while many are refused)"
        ),
    )
    handshake_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "A connection that has not sent a complete HTTP request (the WebSocket upgrade "
            "or a plain GET) this long after connecting is closed (HTTP 408)"
        ),
    )
    close_grace_s: float = Field(
        default=2.0,
        gt=0,
        description=(
            "After the edge sends a Close frame, how long the client has to answer it "
            "before the socket is aborted"
        ),
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

    #: address as written -> (a trusted proxy?, the address as printed), None: no address
    _addresses: dict[str, tuple[bool, str] | None] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> LimitsSettings:
        if self.max_connections_per_ip > self.max_connections:
            raise ValueError("max_connections_per_ip cannot exceed max_connections")
        for pattern in self.allowed_origins:
            check_origin_pattern(pattern)  # raises ValueError on a pattern that could never match
        return self

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        return origin_allowed(origin, host, allowed=self.allowed_origins)

    def client_ip(self, peer: str | None, headers: Headers) -> str:
        return client_ip(peer, headers, self.trusted_proxies, judge=self._judge)

    def trusted_peer(self, peer: str | None) -> bool:
        """Whether ``peer`` is a trusted proxy (whose clients are known only from the request)."""
        known = self._judge(peer) if peer else None
        return known is not None and known[0]

    def _judge(self, text: str) -> tuple[bool, str] | None:
        """:func:`judge_address`, kept per address: asked twice per connection for the peer
        (the ``ipaddress`` work is most of ``client_ip``), and per X-Forwarded-For entry."""
        private = self.__pydantic_private__  # not self._addresses: pydantic's __getattr__ is slow
        assert private is not None
        addresses: dict[str, tuple[bool, str] | None] = private["_addresses"]
        try:
            return addresses[text]
        except KeyError:
            pass
        if len(addresses) >= _ADDRESSES_KEPT:
            addresses.clear()
        known = addresses[text] = judge_address(text, self.trusted_proxies)
        return known

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


class ConnectionLimiter:
    """Open connections per client address and in total.

    >>> limiter = ConnectionLimiter(max_per_ip=1, max_total=10)
    >>> limiter.acquire("192.0.2.1") is None
    True
    >>> limiter.acquire("192.0.2.1").close_code
    <CloseCode.POLICY_VIOLATION: 1008>
    >>> limiter.release("192.0.2.1")

    Over-limit connections are not counted; :attr:`refusing` is how many of them are being
    told so (after their upgrade, so that a browser sees the close code), at most
    :attr:`max_refusing` at once; past that they are refused before any request.

    A connection whose address is not known yet (it came through a trusted proxy and has not
    sent its request) is counted with ``ip=None``: in the total only. :meth:`rekey` moves it
    to its address once known. Call :meth:`release` exactly once for every successful
    :meth:`acquire`, with the connection's current address.
    """

    __slots__ = ("_by_key", "max_per_ip", "max_refusing", "max_total", "refusing", "total")

    def __init__(self, *, max_per_ip: int, max_total: int, max_refusing: int = 64) -> None:
        self.max_per_ip = max_per_ip
        self.max_total = max_total
        self.max_refusing = max_refusing
        self.refusing = 0
        self.total = 0
        self._by_key: dict[str, int] = {}

    def acquire(self, ip: str | None) -> Refusal | None:
        """Count one more connection from ``ip``; the refusal (nothing counted) if over a limit."""
        if self.total >= self.max_total:
            return _GLOBAL
        if ip is None:
            self.total += 1
            return None
        key = limit_key(ip)
        count = self._by_key.get(key, 0)
        if count >= self.max_per_ip:
            return _PER_IP
        self._by_key[key] = count + 1
        self.total += 1
        return None

    def rekey(self, old: str | None, new: str) -> Refusal | None:
        """Move one counted connection from ``old`` to ``new``; the refusal (nothing moved)."""
        key = limit_key(new)
        if old is not None and limit_key(old) == key:
            return None
        count = self._by_key.get(key, 0)
        if count >= self.max_per_ip:
            return _PER_IP
        self._by_key[key] = count + 1
        self.total += 1  # release() takes it off again, with the old key's count
        self.release(old)
        return None

    def release(self, ip: str | None) -> None:
        if ip is None:
            self.total = max(0, self.total - 1)
            return
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
