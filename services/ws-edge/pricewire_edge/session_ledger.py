"""The edge's side of session bookkeeping: session events out, the session list on request.

The registry learns sessions from ``SessionOpened``/``SessionClosed`` events, not from the
edge's periodic report (which carries counters only, so its size does not grow with the
number of clients). An event can be lost on its way (a NATS blip, a JetStream leader
election), so each one is published through JetStream and its acknowledgement checked (by the
:class:`~pricewire_edge.js_publisher.AckedPublisher`: the events of one loop turn go out
together, and no task, future or timer is made per event):

- ``published`` counts the events of this boot; each carries ``boot_id`` and ``event_seq``
  (1, 2, 3...), so a reader can see a gap;
- ``unconfirmed`` counts those JetStream did not acknowledge (not connected, no stream,
  timeout). An event whose acknowledgement alone was lost is counted too: a false alarm costs
  one reconciliation, a missed one a ghost session.

Both go into every ``EdgeReport``. When ``unconfirmed`` grows, or the registry meets a boot it
has not reconciled yet, it asks ``edge.sessions.<edge_id>`` for the edge's live session ids
(:meth:`SessionLedger.page`), a page at a time, and closes what it holds that the edge no
longer lists. Events are never retried: a retried open stored after its close would bring a
closed session back to life in the registry (it orders events by stream sequence).
"""

from __future__ import annotations

import logging
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from pricewire_common.encoding import dumps
from pricewire_common.natsconn import NatsLink
from pricewire_contracts import EdgeSessionList, EdgeSessionsRequest, SubjectCatalog
from pricewire_contracts.events import EDGE_SESSION_PAGE_BYTES

from .js_publisher import AckedPublisher

__all__ = ["SessionLedger"]

log = logging.getLogger("pricewire.edge.sessions")

#: How long an event's JetStream acknowledgement is awaited before it counts as unconfirmed.
EVENT_ACK_TIMEOUT_S = 5.0
#: A listing's sorted snapshot is kept this long for its next pages (then: keyset paging).
_SNAPSHOT_TTL_S = 60.0
_SNAPSHOTS_KEPT = 4


class SessionLedger:
    """Counts and publishes one edge boot's session events; answers the session-list request."""

    def __init__(
        self,
        *,
        edge_id: str,
        boot_id: str,
        subjects: SubjectCatalog,
        link: NatsLink,
        session_ids: Callable[[], Iterable[str]],
        ack_timeout_s: float = EVENT_ACK_TIMEOUT_S,
        batch_wait_s: float = 0.0,
    ) -> None:
        self.edge_id = edge_id
        self.boot_id = boot_id
        self.subjects = subjects
        self.link = link
        self.session_ids = session_ids
        self.ack_timeout_s = ack_timeout_s
        self.published = 0
        self.unconfirmed = 0
        self.publisher = AckedPublisher(
            link, ack_timeout_s=ack_timeout_s, batch_wait_s=batch_wait_s
        )
        # a listing's first page sorts the ids once (O(n log n)); its next pages are slices
        self._snapshots: dict[str, tuple[float, list[str]]] = {}

    def next_seq(self) -> int:
        """The ``event_seq`` of the next session event (counted as published from now on)."""
        self.published += 1
        return self.published

    def publish(self, subject: str, payload: bytes) -> None:
        """Publish one session event and count it unconfirmed unless JetStream acknowledges it."""
        if not self.link.connected.is_set():
            self.unconfirmed += 1  # before the first connect: nowhere to send it
            return
        self.publisher.publish(subject, payload, lambda ok, why: self._confirmed(subject, ok, why))

    def _confirmed(self, subject: str, ok: bool, why: str) -> None:
        if ok:
            return
        self.unconfirmed += 1  # timeout, no stream for the subject, connection closed...
        log.warning(
            "a session event was not confirmed; the registry will reconcile this edge",
            extra={"subject": subject, "error": why, "unconfirmed": self.unconfirmed},
        )

    def page(self, request: EdgeSessionsRequest) -> EdgeSessionList:
        """Live session ids in id order after ``request.after``: at most ``request.limit``,
        and at most about ``EDGE_SESSION_PAGE_BYTES`` of them (far below 1 MiB per reply).

        The first page sorts a snapshot of the ids; the cursor names it (``<snapshot>:<id>``),
        so the next pages are slices of the same snapshot: the whole list is the edge's
        sessions at the first page, when ``session_events_unconfirmed`` was read. A cursor
        whose snapshot is gone (expired) pages on over the live set by id instead: a session
        that closed meanwhile is absent (it is closed), one that opened is not in the
        registry's snapshot of what it held.
        """
        now = time.monotonic()
        for key in [k for k, (at, _) in self._snapshots.items() if now - at > _SNAPSHOT_TTL_S]:
            del self._snapshots[key]
        snap, _, after = (request.after or "").rpartition(":")
        kept = self._snapshots.get(snap)
        if kept is None:
            snap = uuid.uuid4().hex[:16]
            ids = sorted(set(self.session_ids()))
        else:
            ids = kept[1]
        start = bisect_right(ids, after) if after else 0
        chosen: list[str] = []
        size = 0
        for sid in ids[start : start + request.limit]:
            size += len(sid) + 3  # quotes and comma in the JSON array
            if chosen and size > EDGE_SESSION_PAGE_BYTES:
                break
            chosen.append(sid)
        more = start + len(chosen) < len(ids)
        if more and kept is None:
            while len(self._snapshots) >= _SNAPSHOTS_KEPT:
                del self._snapshots[next(iter(self._snapshots))]  # the oldest
            self._snapshots[snap] = (now, ids)
        elif not more:
            self._snapshots.pop(snap, None)
        return EdgeSessionList(
            edge_id=self.edge_id,
            boot_id=self.boot_id,
            session_events=self.published,
            session_events_unconfirmed=self.unconfirmed,
            session_ids=chosen,
            next_cursor=f"{snap}:{chosen[-1]}" if more and chosen else None,
        )

    async def on_request(self, msg: Any) -> None:
        """NATS callback for ``edge.sessions.<edge_id>``."""
        try:
            request = EdgeSessionsRequest.model_validate_json(msg.data or b"{}")
        except ValidationError:
            log.warning("invalid session-list request ignored", extra={"subject": msg.subject})
            return
        if msg.reply:
            await msg.respond(dumps(self.page(request)))
