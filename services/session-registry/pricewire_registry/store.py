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

__all__ = ["TOTAL_KEY", "SessionStore"]

log = logging.getLogger("pricewire.registry.store")

TOTAL_KEY = "meta.total_sessions"
_KV_DELETE_OPS = ("DEL", "PURGE")
_MAX_ATTEMPTS = 10
# JetStream's "wrong last sequence" API error codes (a compare-and-set lost the race)
_WRONG_LAST_SEQUENCE = (10071, 10164)


Decide = Callable[[SessionRecord | None], Change | None]


class SessionStore:
    def __init__(self, kv: Any) -> None:
        self._kv = kv
        self._records: dict[str, tuple[SessionRecord, int]] = {}
        self._total = (0, 0)  # (value, revision)
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
        if key == TOTAL_KEY:
            if not deleted and revision > self._total[1]:
                with contextlib.suppress(ValueError, TypeError):
                    self._total = (int(value or b"0"), revision)
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
        return self._total[0]

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
                await self._add_total(1)
            return change
        raise StoreConflict(f"session {session_id} kept changing")

    async def _fetch(self, key: str) -> tuple[SessionRecord | None, int]:
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError as exc:
            # a deleted key keeps a marker: the next write must name its revision
            return None, (exc.entry.revision if exc.entry is not None else 0)
        return SessionRecord.model_validate_json(entry.value), entry.revision

    async def _add_total(self, amount: int) -> None:
        value, revision = self._total
        for _ in range(_MAX_ATTEMPTS):
            try:
                written = await self._kv.update(
                    TOTAL_KEY, str(value + amount).encode(), last=revision
                )
            except KeyWrongLastSequenceError:
                try:
                    entry = await self._kv.get(TOTAL_KEY)
                    value, revision = int(entry.value or b"0"), entry.revision
                except KeyNotFoundError as exc:
                    value, revision = 0, (exc.entry.revision if exc.entry is not None else 0)
                continue
            if written > self._total[1]:
                self._total = (value + amount, written)
            return
        raise StoreConflict("total_sessions kept changing")

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
