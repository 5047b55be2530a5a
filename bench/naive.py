"""Reference 1: the original system's connection manager, kept only to be measured against.

FastAPI on uvicorn with its defaults (uvloop, httptools, the websockets protocol), and for
every NATS message a loop that awaits ``send_text`` on each subscribed client in turn: the
design the edge replaces. It speaks just enough of the protocol for the bench: ``welcome``
on connect, ``subscribe``/``unsubscribe`` with their acks. Never used by the product.

    python -m bench.naive --port 8201 --nats-url nats://127.0.0.1:4222
"""

from __future__ import annotations

import argparse
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse

from bench.agent import raise_nofile_limit
from pricewire_contracts.common import utc_timestamp
from pricewire_contracts.server import WELCOME_TEXT

log = logging.getLogger("bench.naive")


class ConnectionManager:
    def __init__(self) -> None:
        self.groups: dict[str, set[WebSocket]] = defaultdict(set)

    def subscribe(self, ws: WebSocket, group: str) -> None:
        self.groups[group].add(ws)

    def unsubscribe(self, ws: WebSocket, group: str) -> None:
        self.groups[group].discard(ws)

    def disconnect(self, ws: WebSocket) -> None:
        for members in self.groups.values():
            members.discard(ws)

    async def broadcast(self, group: str, text: str) -> None:
        for ws in list(self.groups[group]):
            try:
                await ws.send_text(text)
            except Exception:
                self.disconnect(ws)


def build_app(nats_url: str, subject: str) -> FastAPI:
    manager = ConnectionManager()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import nats

        nc = await nats.connect(nats_url)

        async def on_price(msg: Any) -> None:
            await manager.broadcast("prices", msg.data.decode())

        await nc.subscribe(subject, cb=on_price)
        state["nc"] = nc
        yield
        await nc.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/ready")
    async def ready() -> PlainTextResponse:
        ok = state.get("nc") is not None and state["nc"].is_connected
        return PlainTextResponse("ok" if ok else "not ready", status_code=200 if ok else 503)

    @app.websocket("/ws")
    async def ws_endpoint(ws: WebSocket) -> None:
        await ws.accept()
        welcome = {
            "type": "welcome",
            "session_id": str(uuid.uuid4()),
            "message": WELCOME_TEXT,
            "timestamp": utc_timestamp(),
        }
        await ws.send_text(json.dumps(welcome, ensure_ascii=False))
        try:
            while True:
                message = json.loads(await ws.receive_text())
                kind, group = message.get("type"), message.get("group")
                if kind == "subscribe" and isinstance(group, str):
                    manager.subscribe(ws, group)
                    reply = {"type": "subscribed", "group": group, "timestamp": utc_timestamp()}
                    await ws.send_text(json.dumps(reply))
                elif kind == "unsubscribe" and isinstance(group, str):
                    manager.unsubscribe(ws, group)
                    reply = {"type": "unsubscribed", "group": group, "timestamp": utc_timestamp()}
                    await ws.send_text(json.dumps(reply))
        except WebSocketDisconnect:
            pass
        finally:
            manager.disconnect(ws)

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--nats-url", required=True)
    parser.add_argument("--subject", default="pricewire.v1.price.*")
    args = parser.parse_args()
    raise_nofile_limit()
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(
        build_app(args.nats_url, args.subject),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
