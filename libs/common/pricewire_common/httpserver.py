"""Running uvicorn inside the service's own event loop (one worker, our signal handling).

Used by every FastAPI service (session-registry, stats, market-ingest): uvicorn's own signal
capture is turned off, because it would install its own SIGTERM handler and re-raise the
signal on exit; the service stops the server itself, in order, on
:func:`pricewire_common.runtime.shutdown_event`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from typing import Any

import uvicorn

__all__ = ["HttpServer"]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # the service owns SIGTERM (runtime.shutdown_event) and stops uvicorn itself, in order
        yield


class HttpServer:
    """``await start()`` returns once the port is bound; ``await stop()`` lets requests finish."""

    def __init__(self, app: Any, *, host: str, port: int, graceful_s: int = 10) -> None:
        # the service logs its own start and stop; uvicorn's banners would only repeat them
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=graceful_s,
            server_header=False,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="http")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what made the server fail (port taken...)
                raise RuntimeError("HTTP server stopped during start-up")
            await asyncio.sleep(0.02)

    @property
    def port(self) -> int:
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self._server.config.port

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
