"""Summing the edges' reports. Pure: no I/O; times are Unix seconds passed in by the caller.

Each edge boot (``edge_id`` + ``boot_id``) reports counters that start at zero and only grow.
The totals (``total_sessions``, ``messages_sent``, ``messages_received``) are::

    base + the latest counters of every boot still kept

so an edge restart (a new boot, counting from zero again) adds to the totals instead of
resetting them, an edge that vanished keeps what it counted, and a report that arrives twice
or late (a lower ``sequence``) never lowers anything: counters of a boot are merged by maximum.
A boot silent for ``retention_s`` is folded into ``base``; the whole :class:`AggregateState`
is what the service persists, so a restart of the stats service loses none of it.

The gauges (``active_connections``, ``client_types``, ``subscriptions``) come only from live
boots: the newest boot of each edge, heard from within ``missed_reports`` report intervals.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from pricewire_contracts import ClientType, ConnectionStats, EdgeReport, Group

__all__ = ["AggregateState", "Aggregator", "BootEntry", "Counters"]


class Counters(BaseModel):
    model_config = ConfigDict(frozen=True)

    total_sessions: int = Field(default=0, ge=0)
    messages_sent: int = Field(default=0, ge=0)
    messages_received: int = Field(default=0, ge=0)

    def plus(self, other: Counters) -> Counters:
        return Counters(
            total_sessions=self.total_sessions + other.total_sessions,
            messages_sent=self.messages_sent + other.messages_sent,
            messages_received=self.messages_received + other.messages_received,
        )

    def merge(self, other: Counters) -> Counters:
        """Field-wise maximum: counters of one boot only grow."""
        return Counters(
            total_sessions=max(self.total_sessions, other.total_sessions),
            messages_sent=max(self.messages_sent, other.messages_sent),
            messages_received=max(self.messages_received, other.messages_received),
        )

    @classmethod
    def of(cls, report: EdgeReport) -> Counters:
        return cls(
            total_sessions=report.total_sessions,
            messages_sent=report.messages_sent,
            messages_received=report.messages_received,
        )


class BootEntry(BaseModel):
    """The latest of one edge boot's reports."""

    model_config = ConfigDict(frozen=True)

    edge_id: str
    boot_id: str
    sequence: int = Field(ge=0)
    interval_s: float = Field(gt=0)
    last_seen: float
    superseded: bool = False
    counters: Counters
    active_connections: int = Field(ge=0)
    client_types: dict[ClientType, int] = Field(default_factory=dict)
    subscriptions: dict[Group, int] = Field(default_factory=dict)


class AggregateState(BaseModel):
    version: int = 1
    base: Counters = Field(default_factory=Counters)
    boots: dict[str, BootEntry] = Field(default_factory=dict)


K = TypeVar("K", ClientType, Group)


def _key(edge_id: str, boot_id: str) -> str:
    return f"{edge_id}/{boot_id}"


class Aggregator:
    """>>> agg = Aggregator()
    >>> agg.apply(report, now=time.time())
    >>> agg.snapshot(now=time.time()).active_connections
    """

    def __init__(
        self,
        state: AggregateState | None = None,
        *,
        missed_reports: int = 3,
        retention_s: float = 6 * 3600.0,
    ) -> None:
        self.state = state or AggregateState()
        self.missed_reports = missed_reports
        self.retention_s = retention_s

    def apply(self, report: EdgeReport, now: float) -> None:
        key = _key(report.edge_id, report.boot_id)
        boots = self.state.boots
        entry = boots.get(key)
        if entry is None:
            # a boot never seen: the edge (re)started, so its earlier boots are over
            for other_key, other in list(boots.items()):
                if other.edge_id == report.edge_id and not other.superseded:
                    boots[other_key] = other.model_copy(update={"superseded": True})
            boots[key] = _entry(report, now)
            return
        counters = entry.counters.merge(Counters.of(report))
        if report.sequence >= entry.sequence and not entry.superseded:
            boots[key] = _entry(report, max(now, entry.last_seen)).model_copy(
                update={"counters": counters}
            )
        else:  # a late or repeated report: it can only raise counters
            boots[key] = entry.model_copy(
                update={"counters": counters, "last_seen": max(now, entry.last_seen)}
            )

    def live(self, now: float) -> list[BootEntry]:
        return [
            entry
            for entry in self.state.boots.values()
            if not entry.superseded
            and now - entry.last_seen <= self.missed_reports * entry.interval_s
        ]

    def totals(self) -> Counters:
        total = self.state.base
        for entry in self.state.boots.values():
            total = total.plus(entry.counters)
        return total

    def snapshot(self, now: float) -> ConnectionStats:
        live = self.live(now)
        totals = self.totals()
        return ConnectionStats(
            active_connections=sum(entry.active_connections for entry in live),
            total_sessions=totals.total_sessions,
            messages_sent=totals.messages_sent,
            messages_received=totals.messages_received,
            client_types=_sum(entry.client_types for entry in live),
            subscriptions=_sum(entry.subscriptions for entry in live),
        )

    def expire(self, now: float) -> bool:
        """Fold boots silent for ``retention_s`` into ``base``; True when anything changed."""
        old = [
            key
            for key, entry in self.state.boots.items()
            if now - entry.last_seen > self.retention_s
        ]
        for key in old:
            entry = self.state.boots.pop(key)
            self.state.base = self.state.base.plus(entry.counters)
        return bool(old)


def _entry(report: EdgeReport, now: float) -> BootEntry:
    return BootEntry(
        edge_id=report.edge_id,
        boot_id=report.boot_id,
        sequence=report.sequence,
        interval_s=report.report_interval_s,
        last_seen=now,
        counters=Counters.of(report),
        active_connections=report.active_connections,
        client_types=dict(report.client_types),
        subscriptions=dict(report.subscriptions),
    )


def _sum(parts: Iterable[dict[K, int]]) -> dict[K, int]:
    tally: Tally[K] = Tally()
    for part in parts:
        tally.update(part)
    # the guide lists only the types and groups that have someone (no zero entries)
    return {key: count for key, count in tally.items() if count > 0}
