"""Faults a simulated provider can be switched into, at start (env, CLI) or at run time
(``POST /_faults``)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DRIFT_MODES", "FAULT_MODES", "Fault", "FaultMode", "assign_faults"]

FaultMode = Literal[
    "latency",  # answer normally after latency_s
    "timeout",  # hold the request for hang_s (longer than any client timeout), then answer
    "rate_limit",  # HTTP 429 with Retry-After and the provider's 429 body (Bybit: its 403 ban)
    "server_error",  # HTTP status (5xx) with an HTML error page
    "garbage",  # random bytes labelled application/json
    "error_body",  # HTTP 200 carrying the provider's own error body
    "truncated",  # the normal answer cut in half
    "html",  # HTTP 200 with an HTML page (a captive portal, a maintenance page)
    "bad_price",  # the provider's shape, every price 0 (a delisted or broken feed)
    "wild_price",  # the provider's shape, every price 50 % off (an outlier)
    # -- the API drift of issue 13, and the real status codes of auth and quota errors --
    "bad_key",  # the API's answer to a wrong key with its real status (CoinGecko, CMC: 401)
    "quota_exhausted",  # the monthly allowance used up (CoinGecko, CoinMarketCap: 429)
    "posts_without_url",  # CryptoPanic v2 on a plan that sends neither url nor original_url
    "unusable_posts",  # CryptoPanic posts with a title only: no id, no link
    "midnight_open",  # Kraken's "o" (today's open) far from the price 24 h ago
]

#: the drift cases (not in the FAULT_MODES cycle: on most providers they answer normally)
DRIFT_MODES: tuple[FaultMode, ...] = (
    "bad_key",
    "quota_exhausted",
    "posts_without_url",
    "unusable_posts",
    "midnight_open",
)

#: the order assign_faults cycles through (every kind of failure shows up)
FAULT_MODES: tuple[FaultMode, ...] = (
    "timeout",
    "rate_limit",
    "server_error",
    "garbage",
    "error_body",
    "truncated",
    "html",
    "bad_price",
    "wild_price",
    "latency",
)


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: FaultMode
    latency_s: float = Field(default=1.5, ge=0)
    hang_s: float = Field(default=30.0, ge=0)
    retry_after_s: float = Field(default=5.0, ge=0)
    status: int = Field(default=503, ge=400, le=599)
    probability: float = Field(default=1.0, ge=0, le=1, description="Share of requests affected")


def assign_faults(
    provider_ids: Sequence[str],
    *,
    fraction: float,
    seed: int = 0,
    modes: Sequence[FaultMode] = FAULT_MODES,
) -> dict[str, Fault]:
    """Fault ``fraction`` of the providers (rounded up), cycling through ``modes``.

    >>> faults = assign_faults([f"p{i}" for i in range(10)], fraction=0.3, seed=1)
    >>> len(faults), sorted(f.mode for f in faults.values())
    (3, ['rate_limit', 'server_error', 'timeout'])
    """
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be within [0, 1]")
    count = math.ceil(round(len(provider_ids) * fraction, 9))  # 10 * 0.3 is 3, not 4
    chosen = random.Random(seed).sample(list(provider_ids), count)
    return {pid: Fault(mode=modes[i % len(modes)]) for i, pid in enumerate(sorted(chosen))}
