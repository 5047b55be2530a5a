"""The subject catalog: the only place a NATS subject, stream or bucket name is built.

Every subject is ``<root>.v1.<fixed tokens>[.<variable token>]``; the root defaults to
``pricewire`` and is configurable so that several deployments can share one NATS. Subjects
under ``v1`` only ever gain optional fields; a breaking change gets ``v2`` beside them.

=============================  =========================================  ==============
subject                        payload                                    publisher
=============================  =========================================  ==============
``price.<SYMBOL>``             ``price_update`` message                   market-ingest
``market``                     ``market_update`` message                  market-ingest
``news``                       ``news`` message                           market-ingest
``alert.<alert_type>``         ``alert`` message                          market-ingest
``provider.health.<provider>`` ``ProviderHealth`` event                   market-ingest
``provider.quotes.<provider>`` ``ProviderQuotes`` event (between shards) market-ingest
``chain.<chain>``              ``ChainStatus`` event                      market-ingest
``tick.<venue>.<SYMBOL>``      ``StreamTick`` (one venue's streamed       market-ingest
                               tick; core NATS only, not kept)
``provider.stats``             ``provider_stats`` message                 stats
``stats.update``               ``stats_update`` message                   stats
``stats.get``                  request ``StatsRequest``, reply ``stats``  stats (replier)
``broadcast.<group>``          any JSON object with a string ``type``     session-registry
``session.opened|closed``      ``SessionOpened`` / ``SessionClosed``      ws-edge
``session.activity``           ``SessionActivity``                        ws-edge
``edge.report.<edge_id>``      ``EdgeReport``                             ws-edge
``edge.sessions.<edge_id>``    request ``EdgeSessionsRequest``, reply     ws-edge (replier)
                               ``EdgeSessionList`` (one page of ids)
=============================  =========================================  ==============
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .common import DATA_GROUPS, Group

__all__ = ["SubjectCatalog", "SubjectError"]

_ROOT = re.compile(r"^[A-Za-z0-9_-]+$")
_SYMBOL = re.compile(r"^[A-Z0-9]{1,20}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CHAIN = re.compile(r"^[a-z0-9_-]{1,64}$")


class SubjectError(ValueError):
    """A token that would not make a valid, single NATS subject token."""


def _token(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.match(value):
        raise SubjectError(f"invalid {what} {value!r} for a NATS subject token")
    return value


@dataclass(frozen=True, slots=True)
class SubjectCatalog:
    """Subjects, JetStream streams and KV buckets of one deployment.

    >>> s = SubjectCatalog("pricewire")
    >>> s.price("BTC")
    'pricewire.v1.price.BTC'
    >>> s.group_subjects(Group.PRICES)
    ('pricewire.v1.price.*',)
    """

    root: str = "pricewire"

    def __post_init__(self) -> None:
        _token(self.root, _ROOT, "root")

    @property
    def base(self) -> str:
        return f"{self.root}.v1"

    # -- market data (market-ingest) -------------------------------------------------
    def price(self, symbol: str) -> str:
        return f"{self.base}.price.{_token(symbol, _SYMBOL, 'symbol')}"

    @property
    def prices(self) -> str:
        return f"{self.base}.price.*"

    @property
    def market(self) -> str:
        return f"{self.base}.market"

    @property
    def news(self) -> str:
        return f"{self.base}.news"

    def alert(self, alert_type: str) -> str:
        return f"{self.base}.alert.{_token(alert_type, _ID, 'alert type')}"

    @property
    def alerts(self) -> str:
        return f"{self.base}.alert.*"

    def provider_health(self, provider_id: str) -> str:
        return f"{self.base}.provider.health.{_token(provider_id, _ID, 'provider id')}"

    @property
    def provider_health_all(self) -> str:
        return f"{self.base}.provider.health.*"

    def provider_quotes(self, provider_id: str) -> str:
        return f"{self.base}.provider.quotes.{_token(provider_id, _ID, 'provider id')}"

    @property
    def provider_quotes_all(self) -> str:
        return f"{self.base}.provider.quotes.*"

    @property
    def provider_stats(self) -> str:
        return f"{self.base}.provider.stats"

    def chain(self, chain: str) -> str:
        """One chain's head (``ChainStatus``); ``chain`` is lower case: ``ethereum``, ``bsc``."""
        return f"{self.base}.chain.{_token(chain, _CHAIN, 'chain')}"

    @property
    def chains(self) -> str:
        return f"{self.base}.chain.*"

    def tick(self, venue: str, symbol: str) -> str:
        """One venue's streamed ticks of one symbol (core NATS only: no stream keeps them).

        >>> SubjectCatalog().tick("binance", "BTC")
        'pricewire.v1.tick.binance.BTC'
        """
        return (
            f"{self.base}.tick.{_token(venue, _CHAIN, 'venue')}.{_token(symbol, _SYMBOL, 'symbol')}"
        )

    @property
    def ticks(self) -> str:
        return f"{self.base}.tick.>"

    # -- stats ----------------------------------------------------------------------
    @property
    def stats_update(self) -> str:
        return f"{self.base}.stats.update"

    @property
    def stats_get(self) -> str:
        return f"{self.base}.stats.get"

    # -- broadcast (session-registry) -------------------------------------------------
    def broadcast(self, group: Group) -> str:
        return f"{self.base}.broadcast.{Group(group).value}"

    @property
    def broadcasts(self) -> str:
        return f"{self.base}.broadcast.*"

    # -- sessions and edges (ws-edge) -------------------------------------------------
    @property
    def session_opened(self) -> str:
        return f"{self.base}.session.opened"

    @property
    def session_closed(self) -> str:
        return f"{self.base}.session.closed"

    @property
    def session_activity(self) -> str:
        return f"{self.base}.session.activity"

    @property
    def sessions(self) -> str:
        return f"{self.base}.session.*"

    def edge_report(self, edge_id: str) -> str:
        return f"{self.base}.edge.report.{_token(edge_id, _ID, 'edge id')}"

    @property
    def edge_reports(self) -> str:
        return f"{self.base}.edge.report.*"

    def edge_sessions(self, edge_id: str) -> str:
        """Where an edge answers with its live session ids, a page at a time (reconciliation)."""
        return f"{self.base}.edge.sessions.{_token(edge_id, _ID, 'edge id')}"

    @property
    def edge_sessions_all(self) -> str:
        return f"{self.base}.edge.sessions.*"

    # -- groups -------------------------------------------------------------------------
    def group_subjects(self, group: Group) -> tuple[str, ...]:
        """The data subjects a client of ``group`` receives (``all``: every data group)."""
        if group is Group.ALL:
            return tuple(s for g in DATA_GROUPS for s in self.group_subjects(g))
        return {
            Group.MARKET: (self.market, self.provider_stats),
            Group.PRICES: (self.prices,),
            Group.NEWS: (self.news,),
            Group.ALERTS: (self.alerts,),
        }[group]

    def group_of(self, subject: str) -> Group | None:
        """The data group a concrete subject belongs to, or ``None`` (stats, broadcast, ...)."""
        rest = subject.removeprefix(self.base + ".")
        if rest == subject:
            return None
        head = rest.split(".", 1)[0]
        if rest in ("market", "provider.stats"):
            return Group.MARKET
        return {"price": Group.PRICES, "news": Group.NEWS, "alert": Group.ALERTS}.get(head)

    # -- JetStream ------------------------------------------------------------------------
    @property
    def _prefix(self) -> str:
        return re.sub(r"[^A-Za-z0-9_]", "_", self.root).upper()

    def stream(self, group: Group) -> str:
        """Stream keeping the recent history of one data group (``seq`` source, resume, snapshot)."""
        if group is Group.ALL:
            raise SubjectError("'all' has no stream of its own")
        return f"{self._prefix}_{group.value.upper()}"

    def stream_subject(self, group: Group) -> str:
        """The subject filter a group's stream captures (market: not ``provider.stats``)."""
        if group is Group.MARKET:
            return self.market
        (subject,) = self.group_subjects(group)
        return subject

    @property
    def chain_stream(self) -> str:
        """The last ``ChainStatus`` of every chain (one message per subject: a KV-like view)."""
        return f"{self._prefix}_CHAIN"

    @property
    def sessions_stream(self) -> str:
        return f"{self._prefix}_SESSIONS"

    @property
    def sessions_bucket(self) -> str:
        return f"{self.root}_sessions"

    @property
    def subscriptions_bucket(self) -> str:
        """Each session's subscriptions, written by the edges, so any edge can resume it."""
        return f"{self.root}_subscriptions"

    @property
    def stats_bucket(self) -> str:
        return f"{self.root}_stats"
