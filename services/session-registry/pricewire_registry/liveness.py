"""Which edges are alive, and which of their sessions they no longer list. Pure: no I/O.

An edge publishes an :class:`EdgeReport` every ``report_interval_s``. When none arrived for
``missed_reports`` intervals the edge is lost (a crashed pod never says goodbye) and its
sessions are closed. Each report also lists the edge's live ``session_ids``: a session the
registry holds for that edge but that two consecutive reports leave out is stale too (its close
event was lost with a crashing edge, or the edge restarted under the same id). Two reports, not
one, because a session opened after the edge built a report can be known here before that
report arrives; the next report always lists it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from pricewire_contracts import EdgeReport

__all__ = ["EdgeLiveness"]


@dataclass(slots=True)
class _Edge:
    last_seen: float
    interval_s: float
    boot_id: str | None = None
    suspects: frozenset[str] = field(default_factory=frozenset)


class EdgeLiveness:
    """Tracks report arrival per edge (times from a monotonic clock, in seconds).

    >>> live = EdgeLiveness(default_interval_s=5)
    >>> live.notice("edge-1", now=0.0)   # seen through a session event: a grace period starts
    >>> live.lost(now=16.0)
    ['edge-1']
    """

    def __init__(self, *, default_interval_s: float, missed_reports: int = 3) -> None:
        if default_interval_s <= 0 or missed_reports < 1:
            raise ValueError("interval must be positive and missed_reports at least 1")
        self.default_interval_s = default_interval_s
        self.missed_reports = missed_reports
        self._edges: dict[str, _Edge] = {}

    def notice(self, edge_id: str, now: float) -> None:
        """An edge known only from its sessions (e.g. after a registry restart): start its clock.

        Seeing its session events does not refresh an edge: events of a dead edge may still be
        in the consumer's backlog, only a report proves it is alive.
        """
        if edge_id not in self._edges:
            self._edges[edge_id] = _Edge(last_seen=now, interval_s=self.default_interval_s)

    def on_report(self, report: EdgeReport, now: float, known: Collection[str]) -> list[str]:
        """Record a report; return the sessions (of ``known``, the registry's live sessions of
        that edge) that this report and the previous one both leave out."""
        edge = self._edges.get(report.edge_id)
        if edge is None:
            edge = self._edges[report.edge_id] = _Edge(
                last_seen=now, interval_s=report.report_interval_s
            )
        edge.last_seen = now
        edge.interval_s = report.report_interval_s
        edge.boot_id = report.boot_id
        if report.active_connections > 0 and not report.session_ids:
            # this edge does not list its sessions: nothing to reconcile against
            edge.suspects = frozenset()
            return []
        missing = frozenset(known).difference(report.session_ids)
        stale = sorted(missing & edge.suspects)
        edge.suspects = missing - edge.suspects
        return stale

    def lost(self, now: float) -> list[str]:
        """Edges without a report for ``missed_reports`` intervals, oldest silence first."""
        overdue = [
            (edge.last_seen, edge_id)
            for edge_id, edge in self._edges.items()
            if now - edge.last_seen > self.missed_reports * edge.interval_s
        ]
        return [edge_id for _, edge_id in sorted(overdue)]

    def forget(self, edge_id: str) -> None:
        self._edges.pop(edge_id, None)

    def known(self) -> list[str]:
        return sorted(self._edges)

    def alive(self, edge_id: str, now: float) -> bool:
        edge = self._edges.get(edge_id)
        return edge is not None and now - edge.last_seen <= self.missed_reports * edge.interval_s
