"""Session records in the subscriptions KV bucket, coalesced: one write per session per loop turn.

Every subscribe, unsubscribe and resume changes a session's record (owner, token digest,
subscriptions), which any edge reads to resume the session. A client that subscribes to three
groups in a row, or a reconnect storm of thousands of clients after a deploy, used to make one
``kv.put`` (a JetStream request and a task) per change. Here a change only marks the session;
at the end of the loop turn each marked session's *current* record is written once, through the
shared :class:`~pricewire_edge.js_publisher.AckedPublisher` (no task or future per write).

A resume must read the newest record. :meth:`RecordWriter.landed` writes a record still waiting
for the end of the turn at once and waits for the acknowledgement of every write of that session
in flight; the resume reads the bucket after it. (A resume on another edge comes after a
reconnect, which takes far longer than one loop turn and one acknowledgement.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Generic, Protocol, TypeVar

from .js_publisher import AckedPublisher

__all__ = ["RecordWriter"]

log = logging.getLogger("pricewire.edge.records")


class _Session(Protocol):
    @property
    def session_id(self) -> str: ...


S = TypeVar("S", bound=_Session)


class RecordWriter(Generic[S]):
    """Writes ``record(session)`` under ``prefix + session_id``, coalesced per loop turn."""

    def __init__(self, publisher: AckedPublisher, record: Callable[[S], bytes]) -> None:
        self.publisher = publisher
        self.record = record
        self.prefix = ""  # "$KV.<bucket>." once the bucket is known
        self.writes = 0
        self._due: dict[str, S] = {}
        self._scheduled = False
        self._inflight: dict[str, int] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}

    def save(self, session: S) -> None:
        """The session's record changed: written at the end of this loop turn."""
        self._due[session.session_id] = session
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        due, self._due = self._due, {}
        for session_id, session in due.items():
            if session.session_id != session_id:
                continue  # the connection took over another session since (resume)
            self._inflight[session_id] = self._inflight.get(session_id, 0) + 1
            self.writes += 1
            self.publisher.publish(
                self.prefix + session_id, self.record(session), partial(self._landed, session_id)
            )

    def _landed(self, session_id: str, ok: bool, why: str) -> None:
        left = self._inflight.pop(session_id, 1) - 1
        if left > 0:
            self._inflight[session_id] = left
        else:
            for waiter in self._waiters.pop(session_id, ()):
                if not waiter.done():
                    waiter.set_result(None)
        if not ok:
            log.warning(
                "a session record was not stored; a resume on another edge may not find it",
                extra={"session_id": session_id, "error": why},
            )

    async def landed(self, session_id: str, timeout_s: float) -> None:
        """Return once every write of this session made so far is acknowledged (or timed out)."""
        if session_id in self._due:
            self.flush()
        if session_id not in self._inflight:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(session_id, []).append(waiter)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await waiter
