"""The dev gateway in front of real upstreams: uvicorn (h11) apps and a websockets server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import h11
import httpx
import pytest
import pytest_asyncio
import uvicorn
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from pricewire_common.testing import free_port
from pricewire_dev.gateway import Gateway, UpstreamAddress
from pricewire_dev.proxy_core import Upstream

Scope = dict[str, Any]


def echo_app(name: str) -> Any:
    """An ASGI app that answers with what it received, so the test sees the forwarded request."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/stream":
            # no Content-Length: uvicorn sends this chunked
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for part in (b"one;", b"two;", b"three"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        payload = json.dumps(
            {
                "upstream": name,
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                "body": body.decode(),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 404 if scope["path"] == "/missing" else 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


async def _wait_for(condition: Any, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@dataclass
class Stack:
    gateway: Gateway
    edge_port: int
    registry_port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.port}"


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[Stack]:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    ports = {Upstream.EDGE: free_port(), Upstream.REGISTRY: free_port()}
    for upstream, port in ports.items():
        config = uvicorn.Config(
            echo_app(str(upstream)),
            host="127.0.0.1",
            port=port,
            lifespan="off",
            ws="none",
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        servers.append((server, asyncio.create_task(server.serve())))
    for server, _ in servers:
        await _wait_for(lambda s=server: s.started)  # type: ignore[misc]
    gateway = Gateway(
        {u: UpstreamAddress("127.0.0.1", p) for u, p in ports.items()}, host="127.0.0.1", port=0
    )
    await gateway.start()
    yield Stack(gateway, ports[Upstream.EDGE], ports[Upstream.REGISTRY])
    await gateway.close()
    for server, task in servers:
        server.should_exit = True
        await task


async def test_get_reaches_the_routed_upstream_with_forwarding_fields(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        edge = (await client.get("/health")).json()
        registry = (await client.get("/api/sessions?limit=2")).json()
        docs = (await client.get("/docs")).json()
    assert edge["upstream"] == "ws-edge"
    assert edge["path"] == "/health"
    assert registry["upstream"] == "session-registry"
    assert registry["path"] == "/api/sessions"
    assert registry["query"] == "limit=2"
    assert docs["upstream"] == "session-registry"
    headers = registry["headers"]
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["host"] == f"127.0.0.1:{stack.gateway.port}"
    assert headers["connection"] == "close"


async def test_post_with_a_json_body_arrives_whole(stack: Stack) -> None:
    message = {"message": {"type": "notification", "text": "سیستم به‌روز شد"}, "group": "all"}
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        response = await client.post("/api/broadcast", json=message)
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["upstream"] == "session-registry"
    assert json.loads(echoed["body"]) == message


async def test_an_upstream_status_and_its_body_are_relayed(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        response = await client.get("/missing")
    assert response.status_code == 404
    assert response.json()["upstream"] == "ws-edge"


class RawClient:
    """One TCP connection driven with h11, which refuses to reuse a connection that may not be."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int) -> RawClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    def send(self, *events: Any) -> None:
        for event in events:
            self.writer.write(self.conn.send(event))

    async def receive(self) -> tuple[list[h11.InformationalResponse], h11.Response, bytes]:
        informational: list[h11.InformationalResponse] = []
        response: h11.Response | None = None
        body = b""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(self.reader.read(65536), 30)
                self.conn.receive_data(data)
            elif isinstance(event, h11.InformationalResponse):
                informational.append(event)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                return informational, response, body
            else:
                raise AssertionError(f"unexpected {event!r}")

    async def request(
        self, method: str, target: str, body: bytes = b""
    ) -> tuple[h11.Response, bytes]:
        fields = [("Host", "localhost")]
        if body:
            fields.append(("Content-Length", str(len(body))))
        self.send(h11.Request(method=method, target=target, headers=fields))
        if body:
            self.send(h11.Data(data=body))
        self.send(h11.EndOfMessage())
        _, response, received = await self.receive()
        self.conn.start_next_cycle()  # raises unless the connection stays open
        return response, received


async def test_keep_alive_carries_several_requests_to_both_upstreams(stack: Stack) -> None:
    client = await RawClient.open(stack.gateway.port)
    try:
        for i in range(3):
            response, body = await client.request("GET", f"/static/asset-{i}.js")
            assert response.status_code == 200
            assert json.loads(body)["path"] == f"/static/asset-{i}.js"
            response, body = await client.request(
                "POST", "/api/broadcast", body=f'{{"n": {i}}}'.encode()
            )
            assert json.loads(body)["body"] == f'{{"n": {i}}}'
            assert json.loads(body)["upstream"] == "session-registry"
        response, body = await client.request("GET", "/stream")
        assert body == b"one;two;three"
        response, body = await client.request("GET", "/after-stream")
        assert json.loads(body)["path"] == "/after-stream"
    finally:
        await client.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Head and body of one Content-Length response (h11 cannot read pipelined answers)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await asyncio.wait_for(reader.readexactly(length), 30)


async def test_pipelined_requests_are_answered_in_order(stack: Stack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
    writer.write(
        b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /api/second HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answers = []
    for _ in range(3):
        head, body = await read_response(reader)
        assert b"connection: close" not in head.lower()
        answers.append((json.loads(body)["path"], json.loads(body)["body"]))
    assert answers == [("/first", ""), ("/api/second", "abc"), ("/third", "")]
    writer.close()
    await writer.wait_closed()


async def test_a_chunked_request_body_is_forwarded_and_the_connection_reused(stack: Stack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
    writer.write(
        b"POST /api/chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    _, body = await read_response(reader)
    assert json.loads(body)["body"] == "hello world"
    _, body = await read_response(reader)
    assert json.loads(body)["path"] == "/next"
    writer.close()
    await writer.wait_closed()


async def test_expect_100_continue_is_relayed_before_the_body(stack: Stack) -> None:
    client = await RawClient.open(stack.gateway.port)
    client.send(
        h11.Request(
            method="POST",
            target="/api/big",
            headers=[("Host", "x"), ("Content-Length", "4"), ("Expect", "100-continue")],
        )
    )
    # the body is only sent after the interim response, as curl and browsers do
    status_line = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), 30)
    assert status_line.startswith(b"HTTP/1.1 100 ")
    client.conn.receive_data(status_line)
    client.send(h11.Data(data=b"data"), h11.EndOfMessage())
    _, response, body = await client.receive()
    assert response.status_code == 200
    assert json.loads(body)["body"] == "data"
    await client.close()


async def test_http_1_0_client_gets_a_closing_response(stack: Stack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
    writer.write(b"GET /old HTTP/1.0\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 30)  # EOF ends it
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.")
    assert json.loads(body)["path"] == "/old"
    writer.close()
    await writer.wait_closed()


async def test_malformed_request_gets_400_and_the_connection_closes(stack: Stack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
    writer.write(b"GET / HTTP/1.1\r\nBad Header: 1\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 30)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    writer.close()
    await writer.wait_closed()


async def test_unreachable_upstream_answers_502_naming_the_service() -> None:
    gateway = Gateway(
        {
            Upstream.EDGE: UpstreamAddress("127.0.0.1", free_port()),
            Upstream.REGISTRY: UpstreamAddress("127.0.0.1", free_port()),
        },
        port=0,
    )
    async with gateway, httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{gateway.port}/api/sessions")
    assert response.status_code == 502
    assert "session-registry is not reachable" in response.text


async def test_websocket_echo_through_the_gateway() -> None:
    seen_headers: list[dict[str, str]] = []

    async def echo(connection: ServerConnection) -> None:
        assert connection.request is not None
        seen_headers.append(dict(connection.request.headers.raw_items()))
        async for message in connection:
            await connection.send(message)

    async with serve(echo, "127.0.0.1", 0) as server:
        edge_port = next(iter(server.sockets)).getsockname()[1]
        gateway = Gateway(
            {
                Upstream.EDGE: UpstreamAddress("127.0.0.1", edge_port),
                Upstream.REGISTRY: UpstreamAddress("127.0.0.1", free_port()),
            },
            port=0,
        )
        async with gateway:
            async with connect(f"ws://127.0.0.1:{gateway.port}/ws?client_type=api") as ws:
                for i in range(20):
                    await ws.send(json.dumps({"type": "ping", "n": i}))
                    assert json.loads(await ws.recv()) == {"type": "ping", "n": i}
                await ws.send(b"\x00\x01binary")
                assert await ws.recv() == b"\x00\x01binary"
                big = "x" * 300_000
                await ws.send(big)
                assert await ws.recv() == big
            assert ws.close_code == 1000
            # the gateway still serves new connections after one closed
            async with connect(f"ws://127.0.0.1:{gateway.port}/ws") as ws:
                await ws.send("again")
                assert await ws.recv() == "again"
    assert seen_headers[0]["X-Forwarded-For"] == "127.0.0.1"
    assert seen_headers[0]["Host"] == f"127.0.0.1:{gateway.port}"


async def test_closing_the_gateway_ends_open_websockets() -> None:
    async def hold(connection: ServerConnection) -> None:
        await connection.wait_closed()

    async with serve(hold, "127.0.0.1", 0) as server:
        edge_port = next(iter(server.sockets)).getsockname()[1]
        gateway = Gateway(
            {
                Upstream.EDGE: UpstreamAddress("127.0.0.1", edge_port),
                Upstream.REGISTRY: UpstreamAddress("127.0.0.1", free_port()),
            },
            port=0,
        )
        await gateway.start()
        async with connect(f"ws://127.0.0.1:{gateway.port}/ws") as ws:
            await gateway.close()
            await asyncio.wait_for(ws.wait_closed(), 30)
        assert ws.close_code == 1006  # the gateway ends the tunnel; no Close frame crosses it
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", gateway.port)


async def test_an_oversized_request_head_gets_431(stack: Stack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
    writer.write(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 30)
    assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    writer.close()
    with contextlib.suppress(ConnectionResetError):
        await writer.wait_closed()


async def test_an_upstream_answering_garbage_gets_502() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    gateway = Gateway(
        {
            Upstream.EDGE: UpstreamAddress("127.0.0.1", port),
            Upstream.REGISTRY: UpstreamAddress("127.0.0.1", free_port()),
        },
        port=0,
    )
    try:
        async with gateway, httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{gateway.port}/health")
        assert response.status_code == 502
        assert "ws-edge answered with something other than HTTP" in response.text
    finally:
        upstream.close()
        await upstream.wait_closed()


async def test_requests_not_completed_in_time_get_408_and_are_closed() -> None:
    """Half-sent upgrade requests cannot pile up on the gateway (issue 12, problem 3)."""
    upstream_hits: list[bytes] = []

    async def edge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_hits.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    upstream = await asyncio.start_server(edge, "127.0.0.1", 0)
    gateway = Gateway(
        {
            Upstream.EDGE: UpstreamAddress("127.0.0.1", upstream.sockets[0].getsockname()[1]),
            Upstream.REGISTRY: UpstreamAddress("127.0.0.1", free_port()),
        },
        port=0,
        handshake_timeout_s=0.5,
    )
    try:
        async with gateway:
            half = [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(50)]
            for _, writer in half:
                writer.write(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n")
                await writer.drain()
            for reader, writer in half:
                answer = await asyncio.wait_for(reader.read(), 30)
                assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
                writer.close()
                await writer.wait_closed()
            await _wait_for(lambda: not gateway._connections)
            assert upstream_hits == []  # nothing half-sent was forwarded
            # a client that completes its request in time is served as before
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{gateway.port}/health")
            assert response.status_code == 502  # the stub upstream answers nothing
            assert len(upstream_hits) == 1
    finally:
        upstream.close()
        await upstream.wait_closed()


def test_the_launcher_gives_the_gateway_the_edges_handshake_timeout() -> None:
    from pricewire_dev.launcher import edge_handshake_timeout

    assert edge_handshake_timeout({}) == 10.0
    assert edge_handshake_timeout({"PRICEWIRE_LIMITS__HANDSHAKE_TIMEOUT_S": "2.5"}) == 2.5
    assert edge_handshake_timeout({"PRICEWIRE_LIMITS__HANDSHAKE_TIMEOUT_S": "nope"}) == 10.0
