"""Chain heads: the providers of one chain merged into one view. Pure: no I/O, clocks passed in.

Each provider's latest head is kept for ``window_s``. The chain's head is the **highest** of
the fresh ones (a node that lags behind does not pull the chain back; one that runs ahead is
impossible on a healthy chain, so the highest is the best estimate of the real tip), first
reported by the provider named in the view. Its age is the head block's own time when a
provider gives it, else the time since any provider first reported that height (a lower
bound). The chain is ``stalled`` when that age exceeds ``stall_blocks`` block times (and at
least ``stall_min_s``).

>>> board = ChainBoard()
>>> board.observe("ethereum", "ankr", ChainHead("ethereum", 100), now=1000.0).height
100
>>> view = board.observe("ethereum", "llama", ChainHead("ethereum", 98), now=1001.0)
>>> view.height, view.provider_id, view.providers, view.spread_blocks, view.behind
(100, 'ankr', 2, 2, 2)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..quotes import ChainHead

__all__ = ["BLOCK_TIME_S", "ChainBoard", "ChainView"]

#: Target block interval of the chains in the catalog, seconds (unknown chains: 15 s)
BLOCK_TIME_S: dict[str, float] = {
    "bitcoin": 600.0,
    "ethereum": 12.0,
    "sepolia": 12.0,
    "bsc": 3.0,
    "polygon": 2.0,
    "mumbai": 2.0,
    "arbitrum": 0.25,
    "optimism": 2.0,
    "base": 2.0,
    "avalanche": 2.0,
    "gnosis": 5.0,
    "solana": 0.4,
    "tron": 3.0,
    "nile": 3.0,
}
_DEFAULT_BLOCK_TIME_S = 15.0


@dataclass(frozen=True, slots=True)
class _Seen:
    head: ChainHead
    seen_at: float  #: when this provider last reported
    since: float  #: when this provider first reported this height


@dataclass(frozen=True, slots=True)
class ChainView:
    """One chain as its fresh providers see it, right after one provider's poll."""

    chain: str
    height: int
    provider_id: str  #: who reported ``height`` first
    block_time: float | None  #: unix seconds of the head block, when a provider gave it
    block_age_s: float
    base_fee_gwei: float | None
    stalled: bool
    providers: int  #: providers of the chain heard within the window
    spread_blocks: int  #: highest minus lowest of their heads
    behind: int  #: how far the provider just polled is behind ``height``
    provider_age_s: float  #: the same age, for the provider just polled's own head


class ChainBoard:
    def __init__(
        self, *, window_s: float = 600.0, stall_blocks: float = 10.0, stall_min_s: float = 180.0
    ) -> None:
        self.window_s = window_s
        self.stall_blocks = stall_blocks
        self.stall_min_s = stall_min_s
        self._heads: dict[str, dict[str, _Seen]] = {}

    def chains(self) -> list[str]:
        return sorted(self._heads)

    def stall_after_s(self, chain: str) -> float:
        block_s = BLOCK_TIME_S.get(chain, _DEFAULT_BLOCK_TIME_S)
        return max(self.stall_blocks * block_s, self.stall_min_s)

    def observe(self, chain: str, provider_id: str, head: ChainHead, *, now: float) -> ChainView:
        """Record one provider's head of ``chain`` and return the chain's view."""
        heads = self._heads.setdefault(chain, {})
        previous = heads.get(provider_id)
        since = (
            previous.since if previous is not None and previous.head.height == head.height else now
        )
        heads[provider_id] = _Seen(head, now, since)
        for pid, seen in list(heads.items()):
            if now - seen.seen_at > self.window_s:
                del heads[pid]
        fresh = list(heads.items())
        top = max(seen.head.height for _, seen in fresh)
        at_top = sorted(((s.since, pid, s) for pid, s in fresh if s.head.height == top))
        first_since, first_pid, _ = at_top[0]
        block_time = next((s.head.block_time for *_, s in at_top if s.head.block_time), None)
        base_fee = next(
            (s.head.base_fee_gwei for *_, s in at_top if s.head.base_fee_gwei is not None), None
        )
        age = _age(now, block_time, first_since)
        mine = heads[provider_id]
        return ChainView(
            chain=chain,
            height=top,
            provider_id=first_pid,
            block_time=block_time,
            block_age_s=age,
            base_fee_gwei=base_fee,
            stalled=age > self.stall_after_s(chain),
            providers=len(fresh),
            spread_blocks=top - min(s.head.height for _, s in fresh),
            behind=top - head.height,
            provider_age_s=_age(now, head.block_time, mine.since),
        )


def _age(now: float, block_time: float | None, since: float) -> float:
    return max(0.0, now - (block_time if block_time is not None else since))
