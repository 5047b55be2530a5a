from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from pricewire_common.testing import NatsServer
from pricewire_edge.app import EdgeApp
from pricewire_edge.settings import EdgeSettings


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


async def recv_json(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return body


async def recv_type(ws: ClientConnection, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next message of ``kind``, skipping others (stats_update, heartbeat...)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        msg = await recv_json(ws, max(left, 0.01))
        if msg["type"] == kind:
            return msg


EdgeFactory = Callable[..., Coroutine[Any, Any, EdgeApp]]


@pytest_asyncio.fixture
async def make_edge(nats_server: NatsServer) -> AsyncIterator[EdgeFactory]:
    edges: list[EdgeApp] = []

    async def factory(**overrides: Any) -> EdgeApp:
        settings = EdgeSettings(port=0, nats_url=nats_server.url, **overrides)
        app = EdgeApp(settings)
        await app.start()
        await wait_for(app.ready)
        edges.append(app)
        return app

    yield factory
    for app in edges:
        await app.stop()


@pytest_asyncio.fixture
async def edge(make_edge: EdgeFactory) -> EdgeApp:
    return await make_edge()


def ws_url(app: EdgeApp) -> str:
    return f"ws://127.0.0.1:{app.port}/ws"


async def open_client(app: EdgeApp, **kwargs: Any) -> ClientConnection:
    ws, _ = await open_session(app, **kwargs)
    return ws


async def open_session(app: EdgeApp, **kwargs: Any) -> tuple[ClientConnection, dict[str, Any]]:
    """A client and its welcome (session id and private resume token)."""
    ws = await connect(ws_url(app), **kwargs)
    welcome = await recv_json(ws)
    assert welcome["type"] == "welcome"
    return ws, welcome
