"""Fixtures of market-ingest's tests: the catalog, recorded answers, and parsing them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pricewire_ingest.adapters import ParseContext, RawResponse, adapter_for, evaluate
from pricewire_ingest.catalog import Catalog, load_catalog
from pricewire_ingest.quotes import PollData

FIXTURES = Path(__file__).parent / "fixtures"
#: 2024-01-15T10:30:00Z, when the recorded answers were taken
NOW = 1705314600.0


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def recorded() -> Callable[[str], bytes]:
    """The bytes of a recorded answer in tests/fixtures."""
    return lambda name: (FIXTURES / name).read_bytes()


@pytest.fixture(scope="session")
def parse(catalog: Catalog) -> Callable[..., PollData]:
    """Run an answer through a family's adapter as a poll would (``now`` defaults to NOW)."""

    def run(
        family: str,
        body: bytes,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        provider_id: str | None = None,
        now: float = NOW,
    ) -> PollData:
        provider = (
            catalog.provider(provider_id)
            if provider_id
            else next(p for p in catalog.providers if p.family == family)
        )
        ctx = ParseContext.for_provider(provider, catalog.assets, now)
        return evaluate(adapter_for(family), RawResponse(status, body, headers or {}), ctx)

    return run


@pytest.fixture
def now() -> float:
    return NOW
