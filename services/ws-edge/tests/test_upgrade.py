"""The edge's own reading of the common upgrade request (upgrade.py), against websockets'.

Every request :func:`parse_upgrade` accepts must be one websockets accepts with the same
meaning (path, header values, 101); everything else must be left to websockets (``None``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from picows import WSListener, ws_connect
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.datastructures import MultipleValuesError
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from pricewire_edge.upgrade import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    UpgradeRequest,
    accept_key,
    parse_upgrade,
    switching_protocols,
)

from .rawws import TEXT, client_frame

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl-_x"

CHROMIUM = (
    "GET /ws HTTP/1.1\r\n"
    "Host: localhost:8000\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://localhost:8000\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-GB,en-US;q=0.9,en;q=0.8\r\n"
    "Cookie: theme=dark; seen=1\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    f"Sec-WebSocket-Protocol: pricewire.v1, bearer.{TOKEN}\r\n"
    "\r\n"
).encode()

FIREFOX = (
    "GET /ws?client_type=browser HTTP/1.1\r\n"
    "Host: 127.0.0.1:8000\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\r\n"
    "Accept: */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Origin: http://127.0.0.1:8000\r\n"
    "Sec-WebSocket-Protocol: pricewire.v1\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Sec-Fetch-Mode: websocket\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "Upgrade: websocket\r\n"
    "\r\n"
).encode()

CURL = (
    "GET /ws?access_token=abc.def-ghi HTTP/1.1\r\n"
    "Host: edge.example.com\r\n"
    "User-Agent: curl/8.5.0\r\n"
    "Accept: */*\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: websocket\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\n"
    "\r\n"
).encode()

PROXIED = (
    "GET /ws HTTP/1.1\r\n"
    "host: pricewire.example.com\r\n"
    "x-forwarded-for: 203.0.113.7, 10.0.0.2\r\n"
    "x-forwarded-proto: https\r\n"
    "upgrade: WebSocket\r\n"
    "connection: upgrade\r\n"
    f"sec-websocket-key: {KEY}\r\n"
    "sec-websocket-version: 13\r\n"
    "\r\n"
).encode()

PLAIN = (
    f"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


def websockets_client_request(**kwargs: object) -> bytes:
    """The request websockets' client writes (its sans-I/O protocol, no socket)."""
    client = ClientProtocol(parse_uri("ws://127.0.0.1:8101/ws"), **kwargs)  # type: ignore[arg-type]
    client.send_request(client.connect())
    return b"".join(client.data_to_send())


def websockets_reading(data: bytes) -> tuple[Request, int, dict[str, str]]:
    """What websockets makes of ``data``: its request, its answer's status and headers."""
    protocol = ServerProtocol(select_subprotocol=lambda _, offered: _select(offered))
    protocol.receive_data(data)
    request = protocol.events_received()[0]
    assert isinstance(request, Request)
    response = protocol.accept(request)
    return request, response.status_code, dict(response.headers.raw_items())


def _select(offered: object) -> str | None:
    return "pricewire.v1" if "pricewire.v1" in offered else None  # type: ignore[operator]


def assert_same_as_websockets(data: bytes, ws_path: str = "/ws") -> UpgradeRequest:
    """``data`` is read by the edge, and the way websockets reads it."""
    parsed = parse_upgrade(data, ws_path)
    assert parsed is not None, data
    request, frames_at = parsed
    theirs, status, headers = websockets_reading(data)
    assert status == 101
    assert request.path == theirs.path
    for name, _ in theirs.headers.raw_items():
        assert request.headers.get_all(name) == theirs.headers.get_all(name), name
    response = switching_protocols(request.key, _select(request.subprotocols))
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert response.endswith(b"\r\n\r\n")
    ours = dict(
        line.split(": ", 1) for line in response[:-4].decode().split("\r\n")[1:]
    )  # one value per name in a 101
    del headers["Date"]  # websockets dates its 101; a 1xx needs none
    assert ours == headers
    assert frames_at == data.index(b"\r\n\r\n") + 4
    return request


# -- what real clients send ------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [CHROMIUM, FIREFOX, CURL, PROXIED, PLAIN],
    ids=["chromium", "firefox", "curl", "proxied", "plain"],
)
def test_the_requests_real_clients_send_are_read_as_websockets_reads_them(data: bytes) -> None:
    assert_same_as_websockets(data)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"subprotocols": ["pricewire.v1"]}, {"origin": "http://localhost:8000"}],
    ids=["bare", "subprotocol", "origin"],
)
def test_the_websockets_clients_request_is_read(kwargs: dict[str, object]) -> None:
    assert_same_as_websockets(websockets_client_request(**kwargs))


async def test_the_requests_picows_and_websockets_write_on_a_socket_are_read() -> None:
    """The bench's client (picows) and the guide's (websockets), as they really write them."""
    heads: list[bytes] = []

    async def capture(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(capture, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"ws://127.0.0.1:{port}/ws"
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws_connect(WSListener, url), 5)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(connect(url, subprotocols=["pricewire.v1"]), 5)  # type: ignore[list-item]
    server.close()
    await server.wait_closed()
    assert len(heads) == 2
    for head in heads:
        assert_same_as_websockets(head)


def test_headers_keep_every_value_and_are_looked_up_without_regard_to_case() -> None:
    request = assert_same_as_websockets(CHROMIUM)
    assert request.path == "/ws"
    assert request.key == KEY
    assert request.subprotocols == ["pricewire.v1", f"bearer.{TOKEN}"]
    assert request.headers.get("ORIGIN") == "http://localhost:8000"
    assert request.headers.get("host") == "localhost:8000"
    assert request.headers.get("X-Forwarded-For") is None
    assert request.headers.get_all("x-forwarded-for") == []
    two = PLAIN.replace(
        b"\r\n\r\n", b"\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8\r\n\r\n"
    )
    parsed = parse_upgrade(two, "/ws")
    assert parsed is not None
    assert parsed[0].headers.get_all("X-Forwarded-For") == ["1.2.3.4", "5.6.7.8"]
    with pytest.raises(MultipleValuesError):
        parsed[0].headers.get("X-Forwarded-For")  # as websockets' Headers.get


def test_a_request_prints_no_token() -> None:
    request = assert_same_as_websockets(CHROMIUM.replace(b"GET /ws ", b"GET /ws?token=sekrit "))
    assert "sekrit" not in repr(request)
    assert TOKEN not in repr(request)
    assert "sec-websocket-protocol" in repr(request)


def test_the_query_string_stays_in_the_path() -> None:
    request = assert_same_as_websockets(CURL)
    assert request.path == "/ws?access_token=abc.def-ghi"
    assert assert_same_as_websockets(FIREFOX).path == "/ws?client_type=browser"


def test_frames_sent_with_the_request_start_after_its_head() -> None:
    frame = client_frame(TEXT, b'{"type":"subscribe","group":"prices"}')
    parsed = parse_upgrade(PLAIN + frame, "/ws")
    assert parsed is not None
    assert parsed[1] == len(PLAIN)
    assert parse_upgrade(PLAIN + frame[:1], "/ws") is not None  # a frame's first byte only


def test_the_accept_key_is_rfc_6455s() -> None:
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3


def test_the_101_is_the_template() -> None:
    assert switching_protocols(KEY, None) == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    assert switching_protocols(KEY, "pricewire.v1").endswith(
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Sec-WebSocket-Protocol: pricewire.v1\r\n\r\n"
    )


# -- what is left to websockets ----------------------------------------------------------------


def _with(header: str) -> bytes:
    return PLAIN.replace(b"\r\n\r\n", f"\r\n{header}\r\n\r\n".encode())


def _without(name: str) -> bytes:
    lines = PLAIN.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.startswith(name.encode() + b":"))


def _replace(old: str, new: str) -> bytes:
    assert old.encode() in PLAIN
    return PLAIN.replace(old.encode(), new.encode(), 1)


def _key(raw: bytes) -> bytes:
    return _replace(KEY, base64.b64encode(raw).decode())


FALLBACKS = {
    "split over reads": PLAIN[:-2],
    "only the request line": b"GET /ws HTTP/1.1\r\n",
    "another path": _replace("GET /ws ", "GET /health "),
    "a longer path": _replace("GET /ws ", "GET /ws/x "),
    "a prefix of the path": _replace("GET /ws ", "GET /w "),
    "an absolute target": _replace("GET /ws ", "GET ws://h/ws "),
    "POST": _replace("GET ", "POST "),
    "lower-case method": _replace("GET ", "get "),
    "HTTP/1.0": _replace("HTTP/1.1", "HTTP/1.0"),
    "HTTP/2": _replace("HTTP/1.1", "HTTP/2"),
    "two spaces": _replace("GET /ws ", "GET  /ws "),
    "a tab in the target": _replace("GET /ws ", "GET /ws\t?x "),
    "no Upgrade": _without("Upgrade"),
    "Upgrade: h2c": _replace("Upgrade: websocket", "Upgrade: h2c"),
    "two upgrades": _replace("Upgrade: websocket", "Upgrade: websocket, h2c"),
    "Upgrade twice": _with("Upgrade: websocket"),
    "no Connection": _without("Connection"),
    "Connection without upgrade": _replace("Connection: Upgrade", "Connection: keep-alive"),
    "Connection not a token list": _replace("Connection: Upgrade", "Connection: Upgrade; x"),
    "Connection with an empty item": _replace("Connection: Upgrade", "Connection: ,Upgrade"),
    "no key": _without("Sec-WebSocket-Key"),
    "key not base64": _replace(KEY, "!" + KEY[1:]),
    "key of 15 bytes": _key(bytes(15)),
    "key of 17 bytes": _key(bytes(17)),
    "key without padding": _replace(KEY, KEY.rstrip("=")),
    "key twice": _with(f"Sec-WebSocket-Key: {KEY}"),
    "version 8": _replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
    "no version": _without("Sec-WebSocket-Version"),
    "version twice": _with("Sec-WebSocket-Version: 13"),
    "Host twice": _with("Host: other"),
    "Origin twice": _with("Origin: http://a\r\nOrigin: http://b"),
    "User-Agent twice": _with("User-Agent: a\r\nUser-Agent: b"),
    "an empty subprotocol": _with("Sec-WebSocket-Protocol: "),
    "a subprotocol with a space": _with("Sec-WebSocket-Protocol: pricewire.v1, a b"),
    "a subprotocol with a slash": _with("Sec-WebSocket-Protocol: a/b"),
    "Content-Length": _with("Content-Length: 0"),
    "Transfer-Encoding": _with("Transfer-Encoding: chunked"),
    "non-ASCII value": _with("User-Agent: caf\u00e9").replace("é".encode(), b"\xe9"),
    "UTF-8 value": _with("User-Agent: caf\u00e9"),
    "a control character": _with("User-Agent: a\x01b"),
    "DEL": _with("User-Agent: a\x7fb"),
    "a bare LF": _replace("\r\nUpgrade:", "\nUpgrade:"),
    "a bare CR": _replace("\r\nUpgrade:", "\rUpgrade:"),
    "a folded line": _with("User-Agent: a\r\n b"),
    "a line without a colon": _with("User-Agent"),
    "a space before the colon": _replace("Host:", "Host :"),
    "an empty header name": _with(": x"),
    "an underscore in a name": _with("X_Forwarded_For: 1.2.3.4"),
    "too many headers": _with("\r\n".join(f"X-{i}: y" for i in range(MAX_HEADERS))),
    "a head too long": _with("Cookie: " + "x" * MAX_HEAD_BYTES),
    "another request after it": PLAIN + b"GET /health HTTP/1.1\r\n\r\n",
    "an unmasked frame after it": PLAIN + b"\x81\x02hi",
    "reserved bits after it": PLAIN + b"\xc1\x82",
}


@pytest.mark.parametrize("data", list(FALLBACKS.values()), ids=list(FALLBACKS))
def test_anything_unusual_is_left_to_websockets(data: bytes) -> None:
    assert parse_upgrade(data, "/ws") is None


def test_a_request_just_within_the_limits_is_read() -> None:
    many = _with(
        "\r\n".join(f"X-{i}: y" for i in range(MAX_HEADERS - len(PLAIN.split(b"\r\n")) + 3))
    )
    assert many.count(b"\r\n") - 2 == MAX_HEADERS
    assert_same_as_websockets(many)
    long = _with("Cookie: " + "x" * (MAX_HEAD_BYTES - len(PLAIN) - 12))
    assert len(long) <= MAX_HEAD_BYTES
    assert_same_as_websockets(long)


def test_another_ws_path_is_read_only_there() -> None:
    other = _replace("GET /ws ", "GET /stream ")
    assert parse_upgrade(other, "/ws") is None
    assert_same_as_websockets(other, "/stream")


# -- any input ------------------------------------------------------------------------------------

_LINES = [
    "Host: h",
    "Host: other",
    "Upgrade: websocket",
    "Upgrade: WebSocket",
    "Upgrade: h2c",
    "Connection: Upgrade",
    "Connection: keep-alive, Upgrade",
    "Connection: close",
    f"Sec-WebSocket-Key: {KEY}",
    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==",
    "Sec-WebSocket-Key: short",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Version: 8",
    "Sec-WebSocket-Protocol: pricewire.v1",
    f"Sec-WebSocket-Protocol: bearer.{TOKEN}, pricewire.v1",
    "Sec-WebSocket-Protocol: chat, , x",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    "Origin: http://localhost:8000",
    "User-Agent: curl/8.5.0",
    "X-Forwarded-For: 203.0.113.7",
    "Content-Length: 0",
    "X-Odd:  spaced \t",
    "x-lower: case",
]


_CORE = [
    "Host: h",
    "Upgrade: websocket",
    "Connection: Upgrade",
    f"Sec-WebSocket-Key: {KEY}",
    "Sec-WebSocket-Version: 13",
]


@settings(deadline=None, max_examples=400)
@given(
    st.permutations(_CORE),
    st.integers(min_value=0, max_value=2),
    st.lists(st.sampled_from(_LINES), max_size=8),
    st.sampled_from(["GET /ws", "GET /ws?token=a.b", "GET /health", "GET /ws?", "POST /ws"]),
    st.binary(max_size=8),
)
def test_whatever_is_read_websockets_reads_the_same(
    core: list[str], drop: int, extra: list[str], start: str, tail: bytes
) -> None:
    """Valid requests with headers dropped, added, repeated, reordered: read as websockets
    reads them, or not at all."""
    lines = core[drop:] + extra if drop < 2 else extra + core
    head = "".join(line + "\r\n" for line in lines)
    data = f"{start} HTTP/1.1\r\n{head}\r\n".encode()
    if parse_upgrade(data + tail, "/ws") is not None:
        assert_same_as_websockets(data)
    elif start.startswith("GET /ws") and drop == 2 and not extra and not tail:
        pytest.fail("a plain valid upgrade was not read")


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=len(PLAIN)))
def test_parse_upgrade_never_raises(noise: bytes, at: int) -> None:
    parse_upgrade(noise, "/ws")
    parse_upgrade(PLAIN[:at] + noise + PLAIN[at:], "/ws")


def test_the_sha1_of_the_template_is_the_rfcs() -> None:
    digest = hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    assert accept_key(KEY) == base64.b64encode(digest).decode()
