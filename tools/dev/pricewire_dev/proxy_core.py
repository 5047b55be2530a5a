"""The gateway's decisions, with no I/O: parse HTTP/1.x heads, route, rewrite, frame bodies.

Bytes in, values and bytes out, so every rule is a table test (``tests/test_proxy_core.py``).
:mod:`pricewire_dev.gateway` does the socket work around these functions.

Header values are decoded as latin-1 because HTTP field values are octets and latin-1 maps
every byte to one code point and back, so nothing a client sends is altered in transit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from .exceptions import BadRequest, ProxyError

__all__ = [
    "BodyFraming",
    "RequestHead",
    "ResponseHead",
    "Upstream",
    "error_response",
    "parse_chunk_size",
    "parse_request_head",
    "parse_response_head",
    "request_framing",
    "response_framing",
    "rewrite_request_head",
    "rewrite_response_head",
    "route",
]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSIONS = frozenset({"HTTP/1.0", "HTTP/1.1"})

# Hop-by-hop fields (RFC 9110 7.6.1) describe one connection, so each hop sets its own.
# Transfer-Encoding is absent on purpose: the gateway relays bodies byte for byte, chunked
# stays chunked, so the field stays true on the next hop.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}
    | {"proxy-authorization", "proxy-authenticate"}
)


class Upstream(StrEnum):
    """Where a request goes under ``make run``; in Kubernetes the Ingress decides the same."""

    EDGE = "ws-edge"
    REGISTRY = "session-registry"


# session-registry serves the REST API and FastAPI's documentation pages.
_REGISTRY_TREES = ("/api", "/docs", "/redoc")
_REGISTRY_EXACT = frozenset({"/openapi.json"})


def _path_of(target: str) -> str:
    """The path of a request target in origin form (``/a?b``) or absolute form."""
    if target.startswith(("http://", "https://")):
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    for sep in ("?", "#"):
        target = target.split(sep, 1)[0]
    return target or "/"


def route(target: str) -> Upstream:
    """``/api``, ``/api/...``, ``/docs``, ``/redoc``, ``/openapi.json`` go to the registry.

    Everything else, ``/ws`` upgrades, static files and the probes included, goes to ws-edge.
    A prefix matches whole segments only: ``/apiary`` is ws-edge's.
    """
    path = _path_of(target)
    if path in _REGISTRY_EXACT:
        return Upstream.REGISTRY
    for tree in _REGISTRY_TREES:
        if path == tree or path.startswith(tree + "/"):
            return Upstream.REGISTRY
    return Upstream.EDGE


def _field_map(headers: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for name, value in headers:
        fields.setdefault(name.lower(), []).append(value)
    return fields


def _tokens(values: list[str]) -> list[str]:
    return [t.strip().lower() for v in values for t in v.split(",") if t.strip()]


@dataclass(frozen=True, slots=True)
class _Head:
    headers: tuple[tuple[str, str], ...]

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return ", ".join(values) if values else None

    @property
    def connection_tokens(self) -> list[str]:
        return _tokens(self.get_all("connection"))


@dataclass(frozen=True, slots=True)
class RequestHead(_Head):
    method: str
    target: str
    version: str

    @property
    def path(self) -> str:
        return _path_of(self.target)

    @property
    def is_upgrade(self) -> bool:
        return "upgrade" in self.connection_tokens and self.get("upgrade") is not None

    @property
    def keep_alive(self) -> bool:
        """Whether the client may send another request on this connection."""
        tokens = self.connection_tokens
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass(frozen=True, slots=True)
class ResponseHead(_Head):
    version: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class BodyFraming:
    """How a message body ends: no body, a byte count, chunked, or the connection's close."""

    kind: Literal["none", "length", "chunked", "until_close"]
    length: int = 0


NO_BODY = BodyFraming("none")
CHUNKED = BodyFraming("chunked")
UNTIL_CLOSE = BodyFraming("until_close")


def _split_head(raw: bytes) -> list[str]:
    text = raw.decode("latin-1")
    # RFC 9112 2.2: a server ignores empty lines before the request line (old clients send
    # a stray CRLF after a POST body).
    text = text.lstrip("\r\n")
    lines = text.split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def _parse_fields(lines: list[str], error: type[ProxyError]) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            raise error("obsolete line folding in a header field")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise error(f"malformed header line {line[:60]!r}")
        headers.append((name, value.strip(" \t")))
    return tuple(headers)


def parse_request_head(raw: bytes) -> RequestHead:
    """Parse a request line and its header fields (``raw`` ends with the blank line)."""
    lines = _split_head(raw)
    if not lines:
        raise BadRequest("empty request")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(f"malformed request line {lines[0][:60]!r}")
    method, target, version = parts
    if not _TOKEN.match(method) or not target:
        raise BadRequest(f"malformed request line {lines[0][:60]!r}")
    if version not in _VERSIONS:
        raise BadRequest(f"unsupported protocol {version[:20]!r}", status=505)
    if method == "CONNECT":
        raise BadRequest("CONNECT is not supported by the dev gateway", status=405)
    headers = _parse_fields(lines[1:], BadRequest)
    head = RequestHead(headers=headers, method=method, target=target, version=version)
    request_framing(head)  # reject smuggling-prone framing before anything is forwarded
    return head


def parse_response_head(raw: bytes) -> ResponseHead:
    """Parse an upstream's status line and header fields."""
    lines = _split_head(raw)
    if not lines:
        raise ProxyError("empty response head from upstream")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not re.fullmatch(r"\d{3}", parts[1]):
        raise ProxyError(f"malformed status line from upstream {lines[0][:60]!r}")
    return ResponseHead(
        headers=_parse_fields(lines[1:], ProxyError),
        version=parts[0],
        status=int(parts[1]),
        reason=parts[2] if len(parts) == 3 else "",
    )


def _content_length(values: list[str], error: type[ProxyError]) -> int:
    lengths = {v.strip() for value in values for v in value.split(",")}
    if len(lengths) != 1:
        raise error("conflicting Content-Length values")
    (length,) = lengths
    if not length.isdigit():
        raise error(f"invalid Content-Length {length[:20]!r}")
    return int(length)


def request_framing(head: RequestHead) -> BodyFraming:
    """RFC 9112 6.3 for requests; ambiguous framing is refused, since it is how smuggling works."""
    codings = _tokens(head.get_all("transfer-encoding"))
    lengths = head.get_all("content-length")
    if codings:
        if lengths:
            raise BadRequest("both Transfer-Encoding and Content-Length")
        if codings[-1] != "chunked":
            raise BadRequest("a request body must end with the chunked coding", status=501)
        return CHUNKED
    if lengths:
        length = _content_length(lengths, BadRequest)
        return BodyFraming("length", length) if length else NO_BODY
    return NO_BODY


def response_framing(head: ResponseHead, *, request_method: str) -> BodyFraming:
    """RFC 9112 6.3 for responses."""
    if request_method == "HEAD" or head.status < 200 or head.status in (204, 304):
        return NO_BODY
    codings = _tokens(head.get_all("transfer-encoding"))
    if codings:
        return CHUNKED if codings[-1] == "chunked" else UNTIL_CLOSE
    lengths = head.get_all("content-length")
    if lengths:
        length = _content_length(lengths, ProxyError)
        return BodyFraming("length", length) if length else NO_BODY
    return UNTIL_CLOSE


def parse_chunk_size(line: bytes) -> int:
    """The size in a chunk-size line (``1a;ext=x\\r\\n``)."""
    size = line.split(b";", 1)[0].strip()
    if not size or len(size) > 16 or not re.fullmatch(rb"[0-9A-Fa-f]+", size):
        raise ProxyError(f"invalid chunk size line {line[:40]!r}")
    return int(size, 16)


def _without_hop_by_hop(head: _Head) -> list[tuple[str, str]]:
    # Fields named in Connection are hop-by-hop too (RFC 9110 7.6.1).
    drop = _HOP_BY_HOP | set(head.connection_tokens)
    return [(n, v) for n, v in head.headers if n.lower() not in drop]


def _serialize(start_line: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [start_line, *(f"{n}: {v}" for n, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def rewrite_request_head(head: RequestHead, *, client_ip: str, scheme: str = "http") -> bytes:
    """The head sent upstream.

    A plain request goes with ``Connection: close``: the gateway opens one upstream connection
    per request, which is trivially correct and cheap on loopback, and keeps the client's
    connection alive on its own side. An upgrade keeps ``Upgrade`` and ``Connection: Upgrade``.
    ``Host`` is kept so upstreams see the origin the browser used.
    """
    headers = [
        (n, v)
        for n, v in _without_hop_by_hop(head)
        if n.lower() not in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")
    ]
    forwarded_for = head.get("x-forwarded-for")
    headers.append(
        ("X-Forwarded-For", f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip)
    )
    # Overwritten, not appended: the gateway is the first hop, so a client-sent value is a lie.
    headers.append(("X-Forwarded-Proto", scheme))
    host = head.get("host")
    if host:
        headers.append(("X-Forwarded-Host", host))
    if head.is_upgrade:
        headers.append(("Upgrade", head.get("upgrade") or ""))
        headers.append(("Connection", "Upgrade"))
    else:
        headers.append(("Connection", "close"))
    return _serialize(f"{head.method} {head.target} {head.version}", headers)


def rewrite_response_head(head: ResponseHead, *, keep_alive: bool) -> bytes:
    """The head relayed to the client; ``keep_alive`` is the gateway's decision, not upstream's."""
    headers = _without_hop_by_hop(head)
    if head.status == 101:
        headers.append(("Upgrade", head.get("upgrade") or ""))
        headers.append(("Connection", "Upgrade"))
    elif not keep_alive:
        headers.append(("Connection", "close"))
    status_line = f"{head.version} {head.status} {head.reason}".rstrip(" ")
    return _serialize(status_line, headers)


_REASONS = {
    400: "Bad Request",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


def error_response(status: int, message: str) -> bytes:
    """A complete plain-text response from the gateway itself; the connection closes after."""
    body = (message.rstrip("\n") + "\n").encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ]
    return _serialize(f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", headers) + body
