"""The common WebSocket upgrade request, read without the websockets library. Pure.

Nearly every client sends its whole upgrade request in the connection's first segment, in
the same few shapes (browsers, websockets, picows, curl). :func:`parse_upgrade` reads such a
request head with plain bytes and string operations into an :class:`UpgradeRequest`, and
:func:`switching_protocols` is its 101, from a template; the websockets library's
generator-based parser, its ``accept`` (with a ``Date`` header formatted per response) and a
``ServerProtocol`` in ``CONNECTING`` state were most of the CPU of a connect storm.

It is an optimisation only: :func:`parse_upgrade` answers ``None`` for anything it does not
recognise as a plain, valid upgrade, and the connection then gives its bytes to websockets as
before, so errors are answered exactly as they were. ``None`` for:

- a head not complete in the first read (split over reads), longer than :data:`MAX_HEAD_BYTES`
  or with more than :data:`MAX_HEADERS` header lines, or followed by bytes that do not start a
  masked client frame;
- another method or path (static files, ``/health``, ``/metrics``), HTTP/1.0, a target with
  anything but printable ASCII;
- header names other than letters, digits and ``-``; anything but printable ASCII and tabs in
  the head; a stray CR or LF; a body (``Content-Length``, ``Transfer-Encoding``);
- ``Upgrade`` other than one ``websocket``; no ``upgrade`` token in ``Connection``; a
  ``Sec-WebSocket-Key`` that is not the base64 of 16 bytes; ``Sec-WebSocket-Version`` other
  than 13; a ``Connection`` or ``Sec-WebSocket-Protocol`` list item that is not a plain token;
- a second ``Host``, ``Origin``, ``User-Agent``, ``Upgrade``, ``Sec-WebSocket-Key`` or
  ``Sec-WebSocket-Version`` header.

Everything accepted here is accepted by websockets with the same meaning (it is a subset of
what its parser and ``ServerProtocol.accept`` take). The edge configures no extension, so a
``Sec-WebSocket-Extensions`` offer (browsers offer permessage-deflate) is declined by leaving
it out of the 101, as websockets does. The 101 carries no ``Date`` (optional on a 1xx) and no
``Server`` header (the edge never sent one).

:class:`HandshakeRequest` is what :meth:`.handshake.Handshakes.on_request` reads, satisfied by
both an :class:`UpgradeRequest` and websockets' ``Request``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Protocol

from websockets.datastructures import MultipleValuesError

__all__ = [
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "HandshakeHeaders",
    "HandshakeRequest",
    "UpgradeHeaders",
    "UpgradeRequest",
    "accept_key",
    "parse_upgrade",
    "switching_protocols",
]

#: A longer head (cookies, long tokens in the query) goes to websockets.
MAX_HEAD_BYTES = 8192
#: More header lines than this go to websockets.
MAX_HEADERS = 64

#: RFC 6455 §1.3: appended to the client's key before hashing.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Bytes a head may hold: HTAB, CR, LF and printable ASCII (CR and LF only as line ends).
_HEAD_BYTES = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x7F)])
#: Headers that must come once (a second one: the request goes to websockets).
_ONCE = frozenset(
    {"host", "origin", "user-agent", "upgrade", "sec-websocket-key", "sec-websocket-version"}
)
_BODY = ("content-length", "transfer-encoding")
#: Header names as clients write them, lower-cased: valid names, looked up in one step.
_KNOWN = {
    spelling: name.lower()
    for name in (
        "Host",
        "Upgrade",
        "Connection",
        "Origin",
        "User-Agent",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
        "Pragma",
        "Cache-Control",
        "Accept-Encoding",
        "Accept-Language",
        "Cookie",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Real-IP",
    )
    for spelling in (name, name.lower())
}


class HandshakeHeaders(Protocol):
    """The request headers, looked up without regard to case."""

    def get(self, key: str, /) -> str | None:
        """The header's value; ``None`` if absent."""

    def get_all(self, key: str) -> list[str]:
        """Every value of the header, in order; empty if absent."""


class HandshakeRequest(Protocol):
    """An HTTP request as the handshake reads it: websockets' ``Request`` or an
    :class:`UpgradeRequest`."""

    @property
    def path(self) -> str:
        """The request target: the path and the query string, if any (``/ws?token=...``)."""

    @property
    def headers(self) -> HandshakeHeaders: ...


class UpgradeHeaders:
    """Header values by lower-cased name, as :func:`parse_upgrade` read them."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values

    def get(self, key: str, /) -> str | None:
        """The header's value; ``None`` if absent; ``MultipleValuesError`` if sent several
        times (as websockets' ``Headers.get``)."""
        values = self._values.get(key.lower())
        if values is None:
            return None
        if len(values) > 1:
            raise MultipleValuesError(key)
        return values[0]

    def get_all(self, key: str) -> list[str]:
        return self._values.get(key.lower(), [])

    def __repr__(self) -> str:  # names only: values may hold a token (bearer.<JWT>)
        return f"UpgradeHeaders({sorted(self._values)!r})"


class UpgradeRequest:
    """A valid WebSocket upgrade request head, read by :func:`parse_upgrade`."""

    __slots__ = ("headers", "key", "path", "subprotocols")

    def __init__(
        self, path: str, headers: UpgradeHeaders, key: str, subprotocols: list[str]
    ) -> None:
        self.path = path
        self.headers = headers
        self.key = key  # Sec-WebSocket-Key
        self.subprotocols = subprotocols  # every Sec-WebSocket-Protocol entry, in order

    def __repr__(self) -> str:  # no query string: it may hold a token (?access_token=)
        return f"UpgradeRequest({self.path.partition('?')[0]!r}, {self.headers!r})"


def _token(text: str) -> bool:
    """A plain token: letters, digits, ``-``, ``.``, ``_`` (a subset of RFC 9110's tchar,
    enough for subprotocols, ``bearer.<JWT>`` and ``Connection`` options). The text is ASCII."""
    return text.replace("-", "").replace(".", "").replace("_", "").isalnum()


def _tokens(values: Iterable[str]) -> list[str] | None:
    """The items of comma-separated token lists; ``None`` if any is not a plain token."""
    items = []
    for value in values:
        for raw in value.split(","):
            item = raw.strip(" \t")
            if not _token(item):
                return None
            items.append(item)
    return items


def _upgrade_option(values: list[str]) -> bool:
    """Whether ``Connection`` is a list of plain tokens with ``upgrade`` among them."""
    if values == ["Upgrade"]:
        return True  # what nearly every client sends
    options = _tokens(values)
    return options is not None and any(option.lower() == "upgrade" for option in options)


def _frame_start(data: bytes, at: int) -> bool:
    """Whether ``data[at:]`` can start a client frame: no reserved bits, masked."""
    if data[at] & 0x70:
        return False
    return len(data) == at + 1 or data[at + 1] & 0x80 != 0


def parse_upgrade(data: bytes, ws_path: str) -> tuple[UpgradeRequest, int] | None:
    """The upgrade request at the start of ``data`` and where its frames start, or ``None``.

    ``data`` is the connection's first read; the request must be ``GET <ws_path>[?query]
    HTTP/1.1`` with a valid upgrade, and whatever follows its head a client's frames.
    ``None`` means: let websockets parse it (see the module's docstring).
    """
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES)
    if end < 0:
        return None
    frames_at = end + 4
    if frames_at < len(data) and not _frame_start(data, frames_at):
        return None
    head = data[:end]
    if head.translate(None, _HEAD_BYTES):
        return None  # a control character or non-ASCII
    lines = head.decode("latin-1").split("\r\n")
    newlines = len(lines) - 1
    if head.count(b"\n") != newlines or head.count(b"\r") != newlines:
        return None  # a CR or an LF on its own
    if newlines > MAX_HEADERS:
        return None
    request_line = lines[0]
    if request_line[:4] != "GET " or request_line[-9:] != " HTTP/1.1":
        return None
    target = request_line[4:-9]
    if " " in target or "\t" in target or target.partition("?")[0] != ws_path:
        return None
    found: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            return None
        key = _KNOWN.get(name)
        if key is None:
            if not name.replace("-", "").isalnum():
                return None
            key = name.lower()
        value = value.strip(" \t")
        values = found.get(key)
        if values is None:
            found[key] = [value]
        elif key in _ONCE:
            return None
        else:
            values.append(value)
    if _BODY[0] in found or _BODY[1] in found:
        return None
    upgrade = found.get("upgrade")
    if upgrade is None or upgrade[0].lower() != "websocket":
        return None
    connection = found.get("connection")
    if connection is None or not _upgrade_option(connection):
        return None
    if found.get("sec-websocket-version") != ["13"]:
        return None
    keys = found.get("sec-websocket-key")
    if keys is None:
        return None
    key = keys[0]
    if (
        len(key) != 24
        or key[22:] != "=="
        or not key[:22].replace("+", "").replace("/", "").isalnum()
    ):
        return None  # not the base64 of 16 bytes
    offered = found.get("sec-websocket-protocol")
    subprotocols = [] if offered is None else _tokens(offered)
    if subprotocols is None:
        return None
    return UpgradeRequest(target, UpgradeHeaders(found), key, subprotocols), frames_at


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    return _accept(key).decode()


def _accept(key: str) -> bytes:
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())


_101 = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"


def switching_protocols(key: str, subprotocol: str | None) -> bytes:
    """The 101 accepting a request with this ``Sec-WebSocket-Key``, selecting ``subprotocol``."""
    accept = _accept(key)
    if subprotocol is None:
        return b"%sSec-WebSocket-Accept: %s\r\n\r\n" % (_101, accept)
    return b"%sSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s\r\n\r\n" % (
        _101,
        accept,
        subprotocol.encode(),
    )
