"""Exponential backoff with full jitter.

A provider's documented rate limit is a :class:`pricewire_common.ratelimit.TokenBucket`, the
same bucket the edge uses for client messages.
"""

from __future__ import annotations

import random

__all__ = ["full_jitter"]


def full_jitter(attempt: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """AWS "full jitter": uniform in [0, min(cap, base * 2**attempt)].

    Spreads retries of many clients evenly instead of in synchronized waves.
    """
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt, 32))
    return rng.uniform(0.0, ceiling)
