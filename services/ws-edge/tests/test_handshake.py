"""The upgrade on a real socket: the edge's own 101 (upgrade.py) and websockets' for the rest.

What the client receives is checked byte for byte where it matters: the accept key, the
subprotocol (``pricewire.v1`` only, never a token), the ``welcome`` after the 101, and the HTTP
errors, which must be websockets' as before. A 101 from the edge's template has no ``Date``
header; websockets' has one: that tells which path answered.
"""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect
from websockets.asyncio.client import connect
from websockets.server import ServerProtocol

from pricewire_edge.app import EdgeApp
from pricewire_edge.upgrade import accept_key

from .conftest import EdgeFactory, recv_json, recv_type, ws_url
from .rawws import BROWSER_UA, TEXT, RawClient, client_frame

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


def request(port: int, *extra: str, key: str | None = None, target: str = "/ws") -> bytes:
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chromium(port: int, key: str, protocols: str) -> bytes:
    return request(
        port,
        "Pragma: no-cache",
        f"User-Agent: {BROWSER_UA}",
        f"Origin: http://127.0.0.1:{port}",
        "Accept-Encoding: gzip, deflate, br, zstd",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
        f"Sec-WebSocket-Protocol: {protocols}",
        key=key,
    )


async def exchange(
    app: EdgeApp, *writes: bytes, pause_s: float = 0.1
) -> tuple[bytes, dict[str, str], RawClient]:
    """Send ``writes`` (one TCP write each, ``pause_s`` apart); the response head as a status
    line and headers (lower-cased names), and the client, to read what follows."""
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    for i, data in enumerate(writes):
        if i:
            await asyncio.sleep(pause_s)
        writer.write(data)
        await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status, *lines = head[:-4].decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(": ")
        assert name.lower() not in headers, f"{name} twice"
        headers[name.lower()] = value
    return status.encode(), headers, RawClient(reader, writer)


def websockets_answer(data: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """What websockets' server answers to ``data``: status line, headers (no Date), body."""
    protocol = ServerProtocol()
    protocol.receive_data(data)
    [event] = protocol.events_received()
    protocol.send_response(protocol.accept(event))  # type: ignore[arg-type]
    response = b"".join(protocol.data_to_send())
    head, _, body = response.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines if not line.startswith("Date:"))
    return status.encode(), headers, body


# -- the edge's own 101 --------------------------------------------------------------------------


async def test_a_websockets_client_gets_the_edges_101_then_its_welcome(edge: EdgeApp) -> None:
    ws = await connect(ws_url(edge), subprotocols=["pricewire.v1"])  # type: ignore[list-item]
    assert ws.response is not None and ws.request is not None
    assert ws.response.status_code == 101
    assert "Date" not in ws.response.headers  # the edge's template, not websockets' accept
    key = ws.request.headers["Sec-WebSocket-Key"]
    assert ws.response.headers["Sec-WebSocket-Accept"] == accept_key(key)
    assert ws.subprotocol == "pricewire.v1"
    assert (await recv_json(ws))["type"] == "welcome"
    await ws.send('{"type": "subscribe", "group": "prices"}')
    assert (await recv_type(ws, "subscribed"))["group"] == "prices"
    await ws.close()
    assert ws.close_code == 1000


async def test_a_browser_request_gets_pricewire_v1_and_never_its_token_back(
    edge: EdgeApp,
) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    data = chromium(edge.port, key, f"bearer.{TOKEN}, pricewire.v1")
    status, headers, client = await exchange(edge, data)
    assert status == b"HTTP/1.1 101 Switching Protocols"
    assert headers == {
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-accept": accept_key(key),
        "sec-websocket-protocol": "pricewire.v1",  # no extension: permessage-deflate declined
    }
    welcome = await client.next_json("welcome")
    assert welcome["session_id"]
    session = edge.by_session[welcome["session_id"]]
    assert session.client_type.value == "browser"
    assert session.ws.subprotocol == "pricewire.v1"
    await client.aclose()


async def test_no_subprotocol_is_echoed_unless_pricewire_v1_is_offered(edge: EdgeApp) -> None:
    for offered in (f"bearer.{TOKEN}", "chat, superchat"):
        key = base64.b64encode(os.urandom(16)).decode()
        status, headers, client = await exchange(edge, chromium(edge.port, key, offered))
        assert status == b"HTTP/1.1 101 Switching Protocols"
        assert "sec-websocket-protocol" not in headers
        assert headers["sec-websocket-accept"] == accept_key(key)
        await client.next_json("welcome")
        await client.aclose()


async def test_frames_sent_with_the_request_are_read_after_the_upgrade(edge: EdgeApp) -> None:
    subscribe = client_frame(TEXT, b'{"type": "subscribe", "group": "prices"}')
    status, headers, client = await exchange(edge, request(edge.port) + subscribe)
    assert status == b"HTTP/1.1 101 Switching Protocols"
    assert "date" not in headers
    await client.next_json("welcome")
    assert (await client.next_json("subscribed"))["group"] == "prices"
    await client.aclose()


async def test_the_query_and_the_headers_of_the_edges_own_request_are_read(
    make_edge: EdgeFactory,
) -> None:
    edge = await make_edge()
    data = request(edge.port, "X-Forwarded-For: 203.0.113.9", target="/ws?client_type=mobile")
    status, headers, client = await exchange(edge, data)
    assert status == b"HTTP/1.1 101 Switching Protocols"
    assert "date" not in headers
    welcome = await client.next_json("welcome")
    conn = edge.by_session[welcome["session_id"]]
    assert conn.client_type.value == "mobile"
    assert conn.ip_key == "203.0.113.9"  # through the trusted (loopback) proxy
    assert edge.conn_limiter.count("203.0.113.9") == 1
    await client.aclose()


class _Picows(WSListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.messages: asyncio.Queue[bytes] = asyncio.Queue()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.messages.put_nowait(frame.get_payload_as_bytes())


async def test_a_picows_client_is_welcomed(edge: EdgeApp) -> None:
    """The bench's client library."""
    transport, listener = await ws_connect(_Picows, ws_url(edge))
    try:
        welcome = await asyncio.wait_for(listener.messages.get(), 10)
        assert b'"welcome"' in welcome
    finally:
        transport.disconnect()


# -- what websockets answers, as before --------------------------------------------------------


async def test_a_request_split_over_two_writes_is_read_by_websockets(edge: EdgeApp) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    data = request(edge.port, key=key)
    status, headers, client = await exchange(edge, data[:30], data[30:])
    assert status == b"HTTP/1.1 101 Switching Protocols"
    assert "date" in headers  # websockets' accept
    assert headers["sec-websocket-accept"] == accept_key(key)
    await client.next_json("welcome")
    await client.aclose()


async def _same_error_as_websockets(app: EdgeApp, data: bytes, status: int) -> None:
    got_status, got_headers, client = await exchange(app, data)
    body = await asyncio.wait_for(client.reader.read(), 10)  # then the edge closes
    await client.aclose()
    expected_status, expected_headers, expected_body = websockets_answer(data)
    assert got_status == expected_status
    assert got_status.startswith(b"HTTP/1.1 %d " % status)
    del got_headers["date"]
    assert got_headers == expected_headers
    assert body == expected_body


async def test_a_bad_key_gets_websockets_400(edge: EdgeApp) -> None:
    await _same_error_as_websockets(edge, request(edge.port, key="not-base64!"), 400)
    short = base64.b64encode(os.urandom(15)).decode()
    await _same_error_as_websockets(edge, request(edge.port, key=short), 400)


async def test_a_wrong_version_gets_websockets_400(edge: EdgeApp) -> None:
    data = request(edge.port).replace(b"Version: 13", b"Version: 8")
    await _same_error_as_websockets(edge, data, 400)


async def test_http_1_0_gets_websockets_505(edge: EdgeApp) -> None:
    data = request(edge.port).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    await _same_error_as_websockets(edge, data, 505)


# -- the edge's checks on its own requests --------------------------------------------------------


async def test_a_foreign_origin_gets_403_on_the_edges_own_path(edge: EdgeApp) -> None:
    data = request(edge.port, "Origin: https://evil.example")
    status, headers, client = await exchange(edge, data)
    body = await asyncio.wait_for(client.reader.read(), 10)
    assert status == b"HTTP/1.1 403 Forbidden"
    assert headers["connection"] == "close"
    assert body == b"origin not allowed\n"
    assert not edge.connections
    await client.aclose()


async def test_a_draining_edge_answers_503_to_the_edges_own_requests(edge: EdgeApp) -> None:
    edge.draining = True
    try:
        status, _, client = await exchange(edge, request(edge.port))
        body = await asyncio.wait_for(client.reader.read(), 10)
    finally:
        edge.draining = False
    assert status == b"HTTP/1.1 503 Service Unavailable"
    assert body == b"the edge is draining; reconnect to another one\n"
    await client.aclose()


async def test_the_handshake_timer_is_cancelled_by_the_edges_own_request(
    make_edge: EdgeFactory,
) -> None:
    from pricewire_edge.limits import LimitsSettings

    edge = await make_edge(limits=LimitsSettings(handshake_timeout_s=0.5))
    status, _, client = await exchange(edge, request(edge.port))
    assert status == b"HTTP/1.1 101 Switching Protocols"
    await client.next_json("welcome")
    await asyncio.sleep(1.0)  # past the handshake timeout: still open, no 408
    await client.send_json({"type": "ping"})
    reply: dict[str, Any] = await client.next_json("pong")
    assert reply["type"] == "pong"
    await client.aclose()


async def test_a_header_the_edge_reads_once_sent_twice_gets_400_not_a_dropped_socket(
    edge: EdgeApp,
) -> None:
    for name in ("Host: evil.example", "Origin: http://a.example", "User-Agent: b"):
        data = request(edge.port, "Origin: http://127.0.0.1", "User-Agent: a", name)
        status, _, client = await exchange(edge, data)
        body = await asyncio.wait_for(client.reader.read(), 10)
        await client.aclose()
        assert status.startswith(b"HTTP/1.1 400 "), (name, status)
        assert body == b"more than one %s header\n" % name.split(":")[0].encode()
