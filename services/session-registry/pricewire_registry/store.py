"""Sessions in the JetStream KV bucket, with an in-memory mirror kept by a KV watch.

Writes are compare-and-set on the key's revision, so replicas that apply events for the same
session at once never lose one another's update: the loser re-reads and merges again (the
merge in :mod:`.table` is order-independent). Reads (the REST API) come from the mirror, which
every replica keeps by watching the bucket, so listing thousands of sessions costs no round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError
from pydantic import ValidationError

from pricewire_common.encoding import dumps

from .errors import StoreConflict
from .table import SESSION_KEY_PREFIX, Change, SessionRecord, session_key

__all__ = ["TOTAL_PREFIX", "SessionStore"]

log = logging.getLogger("pricewire.registry.store")

TOTAL_PREFIX = "meta.total_sessions."
_KV_DELETE_OPS = ("DEL", "PURGE")
_MAX_ATTEMPTS = 10
# JetStream's "wrong last sequence" API error codes (a compare-and-set lost the race)
_WRONG_LAST_SEQUENCE = (10071, 10164)


Decide = Callable[[SessionRecord | None], Change | None]


class SessionStore:
    def __init__(self, kv: Any, *, instance_id: str) -> None:
        self._kv = kv
        self._records: dict[str, tuple[SessionRecord, int]] = {}
        self._totals: dict[str, tuple[int, int]] = {}  # key -> (value, revision)
        self._total_key = TOTAL_PREFIX + instance_id
        self._total_lock = asyncio.Lock()
        self._unsaved = 0
        self.loaded = asyncio.Event()
        self._watcher: Any = None
        self._task: asyncio.Task[None] | None = None

    # -- mirror ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._watcher = await self._kv.watchall()
        self._task = asyncio.create_task(self._follow(), name="registry-kv-watch")

    async def stop(self) -> None:
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        async for entry in self._watcher:
            if entry is None:  # the initial values are all in
                self.loaded.set()
                continue
            self._absorb(entry.key, entry.value, entry.revision, entry.operation)

    def _absorb(self, key: str, value: bytes | None, revision: int, operation: str | None) -> None:
        deleted = operation in _KV_DELETE_OPS
        if key.startswith(TOTAL_PREFIX):
            if not deleted and revision > self._totals.get(key, (0, 0))[1]:
                with contextlib.suppress(ValueError, TypeError):
                    self._totals[key] = (int(value or b"0"), revision)
            return
        if not key.startswith(SESSION_KEY_PREFIX):
            return
        session_id = key[len(SESSION_KEY_PREFIX) :]
        known = self._records.get(session_id)
        if known is not None and known[1] >= revision:
            return  # we already hold a newer revision (our own write)
        if deleted:
            self._records.pop(session_id, None)
            return
        try:
            record = SessionRecord.model_validate_json(value or b"")
        except ValidationError:
            log.warning("unreadable session record in KV", extra={"key": key})
            return
        self._records[session_id] = (record, revision)

    # -- reads ----------------------------------------------------------------------------
    @property
    def total_sessions(self) -> int:
        return sum(value for value, _ in self._totals.values()) + self._unsaved

    def get(self, session_id: str) -> SessionRecord | None:
        known = self._records.get(session_id)
        return known[0] if known and known[0].live else None

    def records(self) -> list[SessionRecord]:
        return [record for record, _ in self._records.values()]

    def live_count(self) -> int:
        return sum(1 for record, _ in self._records.values() if record.live)

    def live_by_edge(self) -> dict[str, set[str]]:
        edges: dict[str, set[str]] = {}
        for record, _ in self._records.values():
            if record.live and record.edge_id is not None:
                edges.setdefault(record.edge_id, set()).add(record.session_id)
        return edges

    def live_on(self, edge_id: str) -> set[str]:
        return {
            record.session_id
            for record, _ in self._records.values()
            if record.live and record.edge_id == edge_id
        }

    # -- writes ---------------------------------------------------------------------------
    async def mutate(self, session_id: str, decide: Decide) -> Change | None:
        """Apply ``decide`` to the session's current record and write the result (CAS)."""
        key = session_key(session_id)
        if key is None:
            raise ValueError(f"session id {session_id[:80]!r} cannot be a KV key")
        known = self._records.get(session_id)
        current, revision = known if known else (None, 0)
        for _ in range(_MAX_ATTEMPTS):
            change = decide(current)
            if change is None:
                return None
            try:
                written = await self._kv.update(key, dumps(change.record), last=revision)
            except KeyWrongLastSequenceError:
                current, revision = await self._fetch(key)
                continue
            self._records[session_id] = (change.record, written)
            if change.new_session:
                await self.count_new_session()
            return change
        raise StoreConflict(f"session {session_id} kept changing")

    async def _fetch(self, key: str) -> tuple[SessionRecord | None, int]:
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError as exc:
            # a deleted key keeps a marker: the next write must name its revision
            return None, (exc.entry.revision if exc.entry is not None else 0)
        return SessionRecord.model_validate_json(entry.value), entry.revision

    async def count_new_session(self) -> None:
        """Add one to this replica's share of ``total_sessions``; never raises.

        Each replica counts in its own key (``meta.total_sessions.<instance>``) and readers sum
        them, so replicas never contend for one counter. A write that fails (NATS away) stays
        pending here and :meth:`flush_total` retries it.
        """
        self._unsaved += 1
        await self.flush_total()

    async def flush_total(self) -> None:
        async with self._total_lock:
            for _ in range(_MAX_ATTEMPTS):
                if self._unsaved == 0:
                    return
                value, revision = self._totals.get(self._total_key, (0, 0))
                amount = self._unsaved
                try:
                    written = await self._kv.update(
                        self._total_key, str(value + amount).encode(), last=revision
                    )
                except KeyWrongLastSequenceError:
                    await self._refresh_own_total()
                    continue
                except Exception:
                    log.warning("saving total_sessions failed; will retry", exc_info=True)
                    return
                self._unsaved -= amount
                self._totals[self._total_key] = (value + amount, written)

    async def _refresh_own_total(self) -> None:
        try:
            entry = await self._kv.get(self._total_key)
            self._totals[self._total_key] = (int(entry.value or b"0"), entry.revision)
        except KeyNotFoundError as exc:
            self._totals[self._total_key] = (0, exc.entry.revision if exc.entry else 0)

    async def forget_closed(self, older_than: datetime) -> int:
        """Delete the records of sessions closed before ``older_than`` (naive UTC)."""
        removed = 0
        for session_id, (record, revision) in list(self._records.items()):
            if record.live or not _closed_before(record, older_than):
                continue
            key = session_key(session_id)
            if key is None:
                continue
            try:
                await self._kv.delete(key, last=revision)
            except APIError as exc:
                if getattr(exc, "err_code", None) not in _WRONG_LAST_SEQUENCE:
                    raise
                continue  # changed meanwhile (a resume, or another replica deleted it)
            self._records.pop(session_id, None)
            removed += 1
        return removed


def _closed_before(record: SessionRecord, moment: datetime) -> bool:
    if record.closed_at is None:
        return False
    try:
        closed = datetime.fromisoformat(record.closed_at)
    except ValueError:
        return True  # unreadable: it is old enough to go
    if closed.tzinfo is not None:
        closed = closed.astimezone(UTC).replace(tzinfo=None)
    return closed < moment
