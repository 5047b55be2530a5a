"""The provider summary (``provider_stats``) from market-ingest's health events. Pure: no I/O.

The latest :class:`ProviderHealth` of every provider wins (by ``checked_at``; ingest shards
publish independently). A provider not heard from for ``stale_after_s`` is counted ``offline``
(its shard may be gone: nobody can vouch for it), and one silent for ``forget_after_s`` leaves
the list (it left the catalog). ``overall_success_rate`` is the success rate of all polls in
the providers' windows, disabled providers left out; with no poll counts, the plain mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pricewire_contracts import (
    ProviderHealth,
    ProviderStatsData,
    ProviderStatsMessage,
    ProviderStatus,
    ProviderSummary,
)

__all__ = ["ProviderBoard", "summarize"]


@dataclass(frozen=True, slots=True)
class _Seen:
    health: ProviderHealth
    received_at: float


class ProviderBoard:
    def __init__(self, *, stale_after_s: float = 300.0, forget_after_s: float = 3600.0) -> None:
        self.stale_after_s = stale_after_s
        self.forget_after_s = forget_after_s
        self._providers: dict[str, _Seen] = {}

    def __len__(self) -> int:
        return len(self._providers)

    def observe(self, health: ProviderHealth, now: float) -> None:
        seen = self._providers.get(health.provider_id)
        if seen is not None and _older(health.checked_at, seen.health.checked_at):
            return  # an older poll delivered late
        self._providers[health.provider_id] = _Seen(health, now)

    def expire(self, now: float) -> None:
        for provider_id, seen in list(self._providers.items()):
            if now - seen.received_at > self.forget_after_s:
                del self._providers[provider_id]

    def statuses(self, now: float) -> list[ProviderStatus]:
        statuses = []
        for provider_id in sorted(self._providers):
            seen = self._providers[provider_id]
            health = seen.health
            stale = now - seen.received_at > self.stale_after_s and health.status != "disabled"
            statuses.append(
                ProviderStatus(
                    provider_id=health.provider_id,
                    name=health.name,
                    category=health.category,
                    status="offline" if stale else health.status,
                    success_rate=health.success_rate,
                    latency_ms=health.latency_ms,
                    breaker=health.breaker,
                    last_checked=health.checked_at,
                    feeds=health.feeds,
                    chain=None if stale else health.chain,
                    upstream=health.upstream,
                    mirror=health.mirror,
                    stream=health.stream,
                )
            )
        return statuses

    def message(self, now: float) -> ProviderStatsMessage | None:
        """The ``provider_stats`` message, or ``None`` while no provider was ever heard from."""
        self.expire(now)
        if not self._providers:
            return None
        statuses = self.statuses(now)
        polls = {pid: seen.health.window_polls for pid, seen in self._providers.items()}
        return ProviderStatsMessage(
            data=ProviderStatsData(summary=summarize(statuses, polls), providers=statuses)
        )


def _older(a: str, b: str) -> bool:
    try:
        return _instant(a) < _instant(b)
    except ValueError:
        return a < b


def _instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def summarize(statuses: list[ProviderStatus], polls: dict[str, int]) -> ProviderSummary:
    counts = {"online": 0, "offline": 0, "rate_limited": 0, "disabled": 0}
    for status in statuses:
        counts[status.status] += 1
    enabled = [s for s in statuses if s.status != "disabled"]
    weight = sum(polls.get(s.provider_id, 0) for s in enabled)
    if weight > 0:
        rate = sum(s.success_rate * polls.get(s.provider_id, 0) for s in enabled) / weight
    elif enabled:
        rate = sum(s.success_rate for s in enabled) / len(enabled)
    else:
        rate = 0.0
    return ProviderSummary(
        total_providers=len(statuses),
        online=counts["online"],
        offline=counts["offline"],
        overall_success_rate=round(min(100.0, max(0.0, rate)), 1),
        rate_limited=counts["rate_limited"],
        disabled=counts["disabled"],
    )
