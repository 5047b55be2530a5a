"""The edge's pure protocol core: client messages in, decisions and bytes out. No I/O.

Everything the edge decides about one client message or one handshake is here, as plain
functions tested with tables of cases: parsing and validating client messages into typed
requests or typed errors, classifying the client from its User-Agent, and building the
WebSocket frame of a payload once for every receiver.
"""

from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from pricewire_contracts import (
    CLIENT_MESSAGE_TYPES,
    ClientMessage,
    ClientType,
    ErrorCode,
    GetStatsRequest,
    PingRequest,
    SubscribeRequest,
    UnsubscribeRequest,
    client_message_adapter,
)

__all__ = ["ProtocolError", "classify_client", "parse_client_message", "text_frame"]


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A client message the edge refuses; it becomes an ``error`` reply, the connection lives on."""

    code: ErrorCode
    message: str
    request_type: str | None = None


#: Requests that carry no secret, kept by their bytes once parsed: a connect storm's clients
#: all send the same ``subscribe``, and JSON parsing plus validation was most of its cost.
#: The models are frozen; nothing changes a request after parsing.
_KEPT_TYPES = (SubscribeRequest, UnsubscribeRequest, PingRequest, GetStatsRequest)
_KEPT_MAX_BYTES = 512
_KEPT_MAX = 256  # distinct messages kept (cleared when full)
_kept: dict[bytes | str, ClientMessage] = {}


def parse_client_message(raw: bytes | str) -> ClientMessage | ProtocolError:
    """Parse one client frame. Never raises: any input gives a request or a ProtocolError."""
    if len(raw) > _KEPT_MAX_BYTES:
        return _parse(raw)
    kept = _kept.get(raw)
    if kept is not None:
        return kept
    parsed = _parse(raw)
    if isinstance(parsed, _KEPT_TYPES):
        if len(_kept) >= _KEPT_MAX:
            _kept.clear()
        _kept[raw] = parsed
    return parsed


def _parse(raw: bytes | str) -> ClientMessage | ProtocolError:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ProtocolError("invalid_json", "message is not valid JSON")
    if not isinstance(body, dict):
        return ProtocolError("invalid_message", "message must be a JSON object")
    kind = body.get("type")
    if not isinstance(kind, str):
        return ProtocolError("invalid_message", "message needs a string field 'type'")
    if kind not in CLIENT_MESSAGE_TYPES:
        allowed = ", ".join(sorted(CLIENT_MESSAGE_TYPES))
        return ProtocolError(
            "unknown_type", f"unknown message type {kind[:40]!r}; one of: {allowed}", kind[:40]
        )
    try:
        return client_message_adapter.validate_python(body)
    except ValidationError as exc:
        return _explain(exc, kind)


def _explain(exc: ValidationError, kind: str) -> ProtocolError:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"][1:]) or "message"
    if where == "group" and first["type"] == "enum":
        return ProtocolError(
            "unknown_group", "unknown group; one of: market, prices, news, alerts, all", kind
        )
    if first["type"] == "missing":
        return ProtocolError("invalid_message", f"'{kind}' needs the field '{where}'", kind)
    return ProtocolError("invalid_message", f"'{kind}': {where}: {first['msg']}", kind)


_MOBILE = re.compile(
    r"Android|iPhone|iPad|iPod|Mobile|okhttp|CFNetwork|Dart/|ReactNative|Expo", re.IGNORECASE
)
_BROWSER = re.compile(r"^Mozilla/|Chrome/|Safari/|Firefox/|Edg/|Opera", re.IGNORECASE)


def classify_client(user_agent: str | None, override: str | None = None) -> ClientType:
    """``browser``, ``mobile`` or ``api``; a valid ``client_type`` query parameter wins.

    >>> classify_client("Python/3.11 websockets/14.1")
    <ClientType.API: 'api'>
    """
    if override:
        try:
            return ClientType(override.lower())
        except ValueError:
            pass
    return _classify_agent(user_agent or "")


@functools.lru_cache(maxsize=1024)
def _classify_agent(ua: str) -> ClientType:
    """Kept per User-Agent: a browser's is long and the case-blind searches cost ~20 us, and
    a reconnect storm brings the same few thousand times."""
    if _MOBILE.search(ua):
        return ClientType.MOBILE
    if _BROWSER.search(ua):
        return ClientType.BROWSER
    return ClientType.API


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (RFC 6455 §5.2), built once and written to every client.

    Server frames are never masked and compression is not negotiated, so the same bytes are
    valid on every connection.
    """
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload
