"""Connecting to NATS: reconnect forever, every callback logged and counted.

NATS going away is a normal event. The client buffers publishes while reconnecting
(``pending_size``) and resubscribes by itself; :class:`NatsLink` tracks how long the link has
been down so that ``/ready`` can fail after ``max_outage_s`` and an orchestrator restarts the pod.
"""

from __future__ import annotations

import asyncio
import logging
import time

from nats.aio.client import Client
from nats.errors import SlowConsumerError

from .metrics import NATS_CONNECTED, NATS_DISCONNECTS, NATS_ERRORS, NATS_RECONNECTS
from .settings import ServiceSettings

__all__ = ["NatsLink"]

log = logging.getLogger("pricewire.nats")


class NatsLink:
    """One NATS connection per process, with its health.

    >>> link = NatsLink(settings, name="ws-edge")
    >>> nc = await link.connect()       # retries until a server answers
    >>> link.ready(max_outage_s=30)     # False once NATS was gone for longer
    """

    def __init__(self, settings: ServiceSettings, *, name: str) -> None:
        self.settings = settings
        self.name = name
        self.nc: Client = Client()
        self._down_since: float | None = time.monotonic()
        self._closing = False
        self.connected = asyncio.Event()

    async def connect(self) -> Client:
        await self.nc.connect(
            servers=self.settings.nats_servers,
            name=f"{self.name}-{self.settings.instance_id}",
            connect_timeout=int(max(1, self.settings.nats_connect_timeout_s)),
            reconnect_time_wait=self.settings.nats_reconnect_wait_s,  # type: ignore[arg-type]
            max_reconnect_attempts=-1,
            allow_reconnect=True,
            ping_interval=5,
            max_outstanding_pings=3,
            pending_size=64 * 1024 * 1024,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            closed_cb=self._on_closed,
        )
        self._mark_up()
        log.info(
            "nats connected",
            extra={"url": self.nc.connected_url.netloc if self.nc.connected_url else None},
        )
        return self.nc

    @property
    def is_connected(self) -> bool:
        return bool(self.nc.is_connected)

    def outage_s(self) -> float:
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def ready(self, *, max_outage_s: float) -> bool:
        """True while connected, and through a short outage; false past ``max_outage_s``."""
        if self.is_connected:
            return True
        # Between the client noticing the drop and its disconnected callback, ``_down_since``
        # is not set yet: the outage has just begun (outage_s() is 0), not "not ready".
        return self.connected.is_set() and self.outage_s() < max_outage_s

    async def close(self) -> None:
        """Drain (finish in-flight messages, flush publishes) then close."""
        self._closing = True
        if self.nc.is_connected:
            try:
                await self.nc.drain()
            except Exception:
                log.warning("nats drain failed, closing", exc_info=True)
        if not self.nc.is_closed:
            await self.nc.close()

    def _mark_up(self) -> None:
        self._down_since = None
        self.connected.set()
        NATS_CONNECTED.set(1)

    async def _on_error(self, err: Exception) -> None:
        kind = "slow_consumer" if isinstance(err, SlowConsumerError) else "other"
        NATS_ERRORS.labels(kind).inc()
        log.warning("nats error", extra={"kind": kind, "error": repr(err)})

    async def _on_disconnected(self) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
        NATS_CONNECTED.set(0)
        if self._closing:
            return  # our own drain, not an outage
        NATS_DISCONNECTS.inc()
        log.warning("nats disconnected")

    async def _on_reconnected(self) -> None:
        self._mark_up()
        NATS_RECONNECTS.inc()
        url = self.nc.connected_url.netloc if self.nc.connected_url else None
        log.info("nats reconnected", extra={"url": url})

    async def _on_closed(self) -> None:
        NATS_CONNECTED.set(0)
        log.info("nats connection closed")
