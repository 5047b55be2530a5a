"""Fixtures of market-ingest's tests: the catalog, recorded answers, and parsing them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
        if provider_id:
            provider = catalog.provider(provider_id)
        else:
            # a family the catalog no longer polls (it fed nothing) is still parsed the same way
            provider = next(
                (p for p in catalog.providers if p.family == family),
                catalog.providers[0].model_copy(update={"id": family, "family": family}),
            )
        ctx = ParseContext.for_provider(provider, catalog.assets, now)
        return evaluate(adapter_for(family), RawResponse(status, body, headers or {}), ctx)

    return run


@pytest.fixture
def now() -> float:
    return NOW


class SimFetcher:
    """A Fetcher answering from an in-process Simulator (no sockets): engine tests run the
    real adapters on the real simulated shapes, with the simulator's faults."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.requests: list[str] = []

    async def fetch(self, spec: Any, *, timeout_s: float) -> RawResponse:
        from pricewire_ingest.errors import PollTimeout

        pid = spec.url.split("://", 1)[1].split("/")[1]
        self.requests.append(pid)
        fault = self.sim.faults.get(pid)
        if fault is not None and fault.mode == "timeout":
            raise PollTimeout(f"no complete answer within {timeout_s:g} s")
        from pricewire_ingest.simulator.strict import SimRequest

        path = spec.url.split("://", 1)[1].split("/", 2)
        request = SimRequest(
            "/" + path[2] if len(path) > 2 else "",
            dict(spec.params),
            {k.lower(): v for k, v in spec.headers.items()},
        )
        answer = await self.sim.answer(self.sim.providers[pid], request)
        headers = {"content-type": answer.content_type}
        if answer.status == 429:
            headers["retry-after"] = f"{fault.retry_after_s:g}" if fault else "5"
        return RawResponse(answer.status, answer.body, headers)


@pytest.fixture
def simulator(catalog: Catalog) -> Any:
    from pricewire_ingest.simulator.server import Simulator

    return Simulator(catalog, seed=7, jump_interval_s=0)


@pytest.fixture
def sim_fetcher(simulator: Any) -> SimFetcher:
    return SimFetcher(simulator)
