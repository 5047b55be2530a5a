"""Errors of market-ingest.

::

    IngestError
     ├── CatalogError          the catalog file is invalid (startup refuses to run)
     └── PollFailure           a poll that produced no usable data; carries its outcome
          ├── RateLimited      HTTP 429, or a provider's own "slow down" answer (retry_after_s)
          ├── HttpStatusError  any other non-2xx status
          ├── BadResponse      not the provider's shape: HTML, truncated or garbage JSON, an error
          │                    body sent with HTTP 200, or a price that is not finite and positive
          ├── PollTimeout      no complete answer within the provider's timeout
          └── NetworkError     DNS, connection refused or reset, TLS
"""

from __future__ import annotations

from typing import ClassVar

from pricewire_contracts import PollOutcome

__all__ = [
    "BadResponse",
    "CatalogError",
    "HttpStatusError",
    "IngestError",
    "NetworkError",
    "PollFailure",
    "PollOutcome",
    "PollTimeout",
    "RateLimited",
]


class IngestError(Exception):
    """Base of every market-ingest error."""


class CatalogError(IngestError):
    pass


class PollFailure(IngestError):
    outcome: ClassVar[PollOutcome] = "bad_response"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        # a provider's text is echoed in health events: keep it short
        self.detail = detail[:200]


class RateLimited(PollFailure):
    outcome = "rate_limited"

    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class HttpStatusError(PollFailure):
    outcome = "http_error"

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(f"HTTP {status}" + (f": {detail}" if detail else ""))
        self.status = status


class BadResponse(PollFailure):
    outcome = "bad_response"


class PollTimeout(PollFailure):
    outcome = "timeout"


class NetworkError(PollFailure):
    outcome = "network_error"
