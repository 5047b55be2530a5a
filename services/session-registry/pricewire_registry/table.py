"""The session table's decisions: pure functions, no I/O.

A session's record is a merge of every event seen for it, so that the result does not depend
on the order in which replicas apply them (several registry replicas share one durable
consumer, and a redelivered or late event may arrive after a newer one):

- ``opens``: the newest open (by JetStream stream sequence) decides edge, client type and data;
- ``closes``: per edge, the stream sequence of the newest close that edge published;
- a session is live while no close from the edge of its newest open is newer than that open.

So ``opened@A, resumed@B, closed@A`` (edge A noticed the drop late) is live on B whatever the
order of arrival, and a redelivered event changes nothing. ``first_open_seq`` marks the one
non-resumed open of a session's life, so that it is counted in ``total_sessions`` exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from pricewire_contracts import ClientType, SessionClosed, SessionOpened

from .errors import CursorError

__all__ = [
    "CURSOR_PATTERN",
    "SESSION_KEY_PREFIX",
    "Change",
    "CursorError",
    "SessionInfo",
    "SessionPage",
    "SessionRecord",
    "decode_cursor",
    "encode_cursor",
    "later",
    "on_activity",
    "on_closed",
    "on_edge_lost",
    "on_opened",
    "page_sessions",
    "session_key",
]

SESSION_KEY_PREFIX = "session."
_SESSION_ID = re.compile(r"^[A-Za-z0-9_=-]{1,128}$")


def session_key(session_id: str) -> str | None:
    """The KV key of a session, or ``None`` for an id that cannot be a KV key token."""
    return SESSION_KEY_PREFIX + session_id if _SESSION_ID.match(session_id) else None


def later(a: str | None, b: str | None) -> str | None:
    """The later of two ISO 8601 timestamps (either may be missing)."""
    if not a or not b:
        return a or b
    try:
        return a if _instant(a) >= _instant(b) else b
    except ValueError:
        return max(a, b)


def _instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    # the guide's timestamps are naive UTC; an explicit offset is converted to it
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


class SessionInfo(BaseModel):
    """One session as the guide shows it in ``GET /api/sessions``."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    client_type: ClientType
    connected_at: str
    last_activity: str


class OpenMark(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    edge_id: str
    client_type: ClientType
    connected_at: str
    resumed: bool = False
    user: str | None = None


class SessionRecord(BaseModel):
    """What the KV bucket holds per session (shared by every registry replica)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    session_id: str
    open: OpenMark | None = None
    closes: dict[str, int] = Field(default_factory=dict)
    first_open_seq: int | None = None
    connected_at: str | None = None
    last_activity: str | None = None
    closed_at: str | None = None
    close_reason: str | None = None

    @property
    def live(self) -> bool:
        if self.open is None:
            return False
        return self.closes.get(self.open.edge_id, -1) < self.open.seq

    @property
    def edge_id(self) -> str | None:
        return self.open.edge_id if self.open else None

    def info(self) -> SessionInfo:
        assert self.open is not None, "only a session that was opened has a public view"
        connected = self.connected_at or self.open.connected_at
        return SessionInfo(
            session_id=self.session_id,
            client_type=self.open.client_type,
            connected_at=connected,
            last_activity=later(self.last_activity, connected) or connected,
        )


@dataclass(frozen=True, slots=True)
class Change:
    """A decision: write ``record``; ``new_session``/``closed`` say what to count."""

    record: SessionRecord
    new_session: bool = False
    closed: bool = False


def on_opened(current: SessionRecord | None, event: SessionOpened, seq: int) -> Change | None:
    """Merge an open (or a resume); ``None`` when it teaches nothing new (a redelivery)."""
    record = current or SessionRecord(session_id=event.session_id)
    was_live = record.live
    new_session = not event.resumed and record.first_open_seq is None
    newer = record.open is None or seq > record.open.seq
    if not newer and not new_session:
        return None
    mark = OpenMark(
        seq=seq,
        edge_id=event.edge_id,
        client_type=event.client_type,
        connected_at=event.connected_at,
        resumed=event.resumed,
        user=event.user,
    )
    updated = record.model_copy(
        update={
            "open": mark if newer else record.open,
            "first_open_seq": seq if new_session else record.first_open_seq,
            # the session's birth is its first, non-resumed open; a resume keeps it
            "connected_at": (
                event.connected_at
                if new_session or record.connected_at is None
                else record.connected_at
            ),
            "last_activity": later(record.last_activity, event.connected_at),
        }
    )
    if updated.live:
        updated = updated.model_copy(update={"closed_at": None, "close_reason": None})
    return Change(updated, new_session=new_session, closed=was_live and not updated.live)


def on_closed(current: SessionRecord | None, event: SessionClosed, seq: int) -> Change | None:
    """Merge a close. A close that arrives before its open is kept, so the open stays closed."""
    record = current or SessionRecord(session_id=event.session_id)
    if record.closes.get(event.edge_id, -1) >= seq:
        return None
    was_live = record.live
    updated = record.model_copy(update={"closes": {**record.closes, event.edge_id: seq}})
    if not updated.live:
        updated = updated.model_copy(
            update={
                "closed_at": later(record.closed_at, event.closed_at),
                "close_reason": event.reason,
            }
        )
    return Change(updated, closed=was_live and not updated.live)


def on_edge_lost(current: SessionRecord, edge_id: str, now: str, reason: str) -> Change | None:
    """Close a session whose edge stopped reporting (crashed), as of its newest open."""
    if not current.live or current.open is None or current.open.edge_id != edge_id:
        return None
    updated = current.model_copy(
        update={
            "closes": {**current.closes, edge_id: current.open.seq},
            "closed_at": now,
            "close_reason": reason,
        }
    )
    return Change(updated, closed=True)


def on_activity(current: SessionRecord | None, edge_id: str, at: str) -> Change | None:
    """Move ``last_activity`` forward for a live session on that edge; else nothing."""
    if current is None or not current.live or current.edge_id != edge_id:
        return None
    newest = later(current.last_activity, at)
    if newest == current.last_activity:
        return None
    return Change(current.model_copy(update={"last_activity": newest}))


# -- listing -------------------------------------------------------------------------------


def encode_cursor(session_id: str) -> str:
    """A page's cursor is the last session id it holds (keyset paging: ids are URL-safe)."""
    return session_id


def decode_cursor(cursor: str) -> str:
    if not _SESSION_ID.match(cursor):
        raise CursorError("cursor must be a session id (the next_cursor of a page)")
    return cursor


CURSOR_PATTERN = _SESSION_ID.pattern


@dataclass(frozen=True, slots=True)
class SessionPage:
    sessions: list[SessionInfo]
    next_cursor: str | None


def page_sessions(
    records: Iterable[SessionRecord],
    *,
    client_type: ClientType | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> SessionPage:
    """Live sessions ordered by id, filtered, from just after ``after``, at most ``limit``.

    Ordering by id keeps a cursor stable while sessions come and go: a page never repeats an
    entry, and a session that opens during paging shows up if its id sorts after the cursor.
    """
    chosen = sorted(
        (
            r
            for r in records
            if r.live
            and (client_type is None or (r.open is not None and r.open.client_type == client_type))
            and (after is None or r.session_id > after)
        ),
        key=lambda r: r.session_id,
    )
    if limit is None or len(chosen) <= limit:
        return SessionPage([r.info() for r in chosen], None)
    page = chosen[:limit]
    return SessionPage([r.info() for r in page], encode_cursor(page[-1].session_id))
