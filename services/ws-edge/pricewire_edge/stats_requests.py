"""Stats requests: the online count and the rest, asked of the stats service over NATS.

A client's ``get_stats`` is one request (:meth:`StatsRequests.get_stats`); a new client gets
the online count at once rather than at the next tick, and clients that connect together (a
reconnect storm after a deploy) share one request (:meth:`StatsRequests.want_initial_stats`).
Each request carries the edge's report, so the stats service counts this edge's sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from pricewire_common.encoding import dumps
from pricewire_common.natsconn import NatsLink
from pricewire_contracts import EdgeReport, StatsRequest

from .connection import Connection
from .fanout import Fanout
from .frame_keys import STATS_KEY
from .protocol import ProtocolError, text_frame
from .settings import EdgeSettings
from .tasks import spawn

__all__ = ["StatsRequests"]

#: Clients that connect within this of the first one share its stats request.
_BATCH_S = 0.05


class StatsRequests:
    """Asks the stats service; ``report`` is the edge's current report, sent along."""

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        link: NatsLink,
        fanout: Fanout,
        report: Callable[[], EdgeReport],
    ) -> None:
        self.settings = settings
        self.link = link
        self.fanout = fanout
        self.report = report
        self.waiters: list[Connection] = []

    async def ask_stats(self) -> bytes | None:
        if not self.link.is_connected:
            return None
        request = StatsRequest(edge_id=self.settings.instance_id, report=self.report())
        try:
            reply = await self.link.nc.request(
                self.settings.subjects.stats_get,
                dumps(request),
                timeout=self.settings.stats_timeout_s,
            )
        except (TimeoutError, NatsTimeoutError, NoRespondersError):
            return None
        data: bytes = reply.data
        return data

    async def get_stats(self, conn: Connection) -> None:
        data = await self.ask_stats()
        if not conn.is_open:
            return
        if data is None:
            self.fanout.error(
                conn,
                ProtocolError(
                    "stats_unavailable", "the stats service did not answer; try again", "get_stats"
                ),
            )
        else:
            self.fanout.reply(conn, data)

    def want_initial_stats(self, conn: Connection) -> None:
        """A new client learns the online count at once, not at the next 30 s tick.

        Clients that connect together (a reconnect storm after a deploy) share one request.
        """
        self.waiters.append(conn)
        if len(self.waiters) == 1:
            spawn(self._initial_stats())

    async def _initial_stats(self) -> None:
        await asyncio.sleep(_BATCH_S)
        waiters, self.waiters = self.waiters, []
        data = await self.ask_stats()
        if data is None:
            return
        body = orjson.loads(data)
        if isinstance(body, dict) and body.get("type") == "stats":
            body["type"] = "stats_update"
            frame = text_frame(orjson.dumps(body))
            self.fanout.fanout([c for c in waiters if c.is_open], frame, STATS_KEY)
