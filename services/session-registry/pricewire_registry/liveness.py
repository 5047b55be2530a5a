"""Which edges are alive, and when an edge's sessions must be reconciled. Pure: no I/O.

**Dead edges.** An edge publishes an :class:`EdgeReport` every ``report_interval_s``. When none
arrived for ``missed_reports`` intervals the edge is lost (a crashed pod never says goodbye)
and its sessions are closed.

**Sessions without a list every 5 s.** A report carries counters only, so its size does not
grow with the number of sessions (a list of every session id outgrew NATS's 1 MiB
``max_payload`` past about 25,000 sessions). The registry learns sessions from the
``SessionOpened``/``SessionClosed`` events in the sessions stream. Such an event can be lost
before the stream stores it (a NATS blip, a JetStream leader election, an edge that crashes
and restarts under the same id), and a lost close leaves a ghost session here. So the edge
publishes each event through JetStream, awaits the acknowledgement, and reports two counters:
``session_events`` (published this boot) and ``session_events_unconfirmed`` (of those, the ones
JetStream did not acknowledge). Once stored, an event reaches the registry: its consumer is
durable and explicitly acknowledged.

:meth:`EdgeLiveness.on_report` answers "reconcile this edge?" with a reason, when:

- ``first_report``: the registry has not reconciled this edge since it started (or since it
  forgot the edge): it cannot know what it missed;
- ``new_boot``: the edge restarted (``boot_id`` changed): the previous boot's closes may be lost;
- ``unconfirmed_events``: ``session_events_unconfirmed`` grew past what the last
  reconciliation covered.

Constant churn without loss never reconciles: the counter of unconfirmed events stays put.

A reconciliation is a request-reply on ``edge.sessions.<edge_id>``, made only then (never
every interval): the registry snapshots the live sessions it holds for the edge *before* the
first request, pages through the edge's :class:`EdgeSessionList` (at most 10,000 ids and
512 KiB a page), closes the snapshot's sessions the edge does not list (:func:`unlisted`,
reason ``not_listed``) and records the first page's ``boot_id`` and unconfirmed count
(:meth:`EdgeLiveness.reconciled`). A session opened after the snapshot is not in it, so it
cannot be closed by mistake; one closed during the paging is closed anyway. An edge that does
not answer (timeout, no responders) is asked again at its next report.

Why the edge counts and not the registry: several registry replicas share one durable
consumer, so each sees only part of the events and could not tell a lost event from one a
peer applied. Every replica receives every report, so each decides alone, the same way
(``boot_id``/``event_seq`` on the events still let any reader see a gap).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from pricewire_contracts import EdgeReport

__all__ = ["EdgeLiveness", "ReconcileReason", "unlisted"]

ReconcileReason = Literal["first_report", "new_boot", "unconfirmed_events"]


@dataclass(slots=True)
class _Edge:
    last_seen: float
    interval_s: float
    boot_id: str | None = None  # of the latest report
    reconciled_boot: str | None = None  # the boot the last reconciliation covered (None: none)
    reconciled_unconfirmed: int = 0  # that boot's unconfirmed events it covered


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

    def on_report(self, report: EdgeReport, now: float) -> ReconcileReason | None:
        """Record a report; say why this edge's sessions must be reconciled, if they must."""
        edge = self._edges.get(report.edge_id)
        if edge is None:
            edge = self._edges[report.edge_id] = _Edge(
                last_seen=now, interval_s=report.report_interval_s
            )
        edge.last_seen = now
        edge.interval_s = report.report_interval_s
        edge.boot_id = report.boot_id
        if edge.reconciled_boot is None:
            return "first_report"
        if edge.reconciled_boot != report.boot_id:
            return "new_boot"
        if report.session_events_unconfirmed > edge.reconciled_unconfirmed:
            return "unconfirmed_events"
        return None

    def reconciled(self, edge_id: str, boot_id: str, unconfirmed: int) -> None:
        """A reconciliation covered ``boot_id`` up to ``unconfirmed`` unconfirmed events (the
        values of the first page of the edge's list: older than every later page)."""
        edge = self._edges.get(edge_id)
        if edge is None:
            return  # lost meanwhile: its sessions are closed; a new report starts afresh
        edge.reconciled_boot = boot_id
        edge.reconciled_unconfirmed = unconfirmed

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


def unlisted(known_before: Collection[str], listed: Collection[str]) -> list[str]:
    """The sessions to close after a reconciliation: those the registry held for the edge
    before it asked (``known_before``) that the edge's list leaves out, in id order."""
    return sorted(set(known_before).difference(listed))
