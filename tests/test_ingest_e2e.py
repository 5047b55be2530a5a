"""market-ingest end to end: a real nats-server, the provider simulator and the ingest as
processes (the same code path as ``make demo``), observed directly on NATS (and through ws-edge).

- healthy: BTC's consensus price arrives within seconds, with market updates, news and the
  health of every provider of the catalog;
- 30 % of the providers faulted in every way the simulator knows: the others stay online, the
  faulted ones are reported offline or rate_limited, and no price far from the truth is published.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pricewire_common.testing import NatsServer, ServiceProcess
from pricewire_contracts import (
    MarketUpdate,
    NewsMessage,
    PriceUpdate,
    ProviderHealth,
    SubjectCatalog,
)
from pricewire_ingest.adapters import adapter_for
from pricewire_ingest.catalog import load_catalog

SUBJECTS = SubjectCatalog("pricewire")
CATALOG = load_catalog()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Awaitable[ServiceProcess]]]:
    """Start a service process (logs in tmp_path); every one is stopped after the test.

    Waiting for /ready happens in a thread: the test's NATS client keeps reading meanwhile.
    """
    started: list[ServiceProcess] = []

    async def run(module: str, name: str, env: dict[str, str]) -> ServiceProcess:
        proc = ServiceProcess(module, env=env, log_file=tmp_path / f"{name}.log")
        started.append(proc)
        return await asyncio.to_thread(proc.start, timeout_s=60)

    yield run
    for proc in reversed(started):
        proc.stop()


def _ingest_env(nats: NatsServer, simulator: ServiceProcess) -> dict[str, str]:
    return {
        "PRICEWIRE_NATS_URL": nats.url,
        "PRICEWIRE_PROVIDER_BASE_URL_OVERRIDE": simulator.url(),
        "PRICEWIRE_SIMULATED_KEYS": "true",
        "PRICEWIRE_POLL_INTERVAL_SCALE": "0.1",
        "PRICEWIRE_INITIAL_SPREAD_S": "1",
        "PRICEWIRE_REQUEST_TIMEOUT_S": "4",
        "PRICEWIRE_PRICE_TICK_S": "0.5",
        "PRICEWIRE_MARKET_INTERVAL_S": "1",
        "PRICEWIRE_INSTANCE_ID": "ingest-e2e",
    }


class Inbox:
    """Everything published on the ingest's subjects, by kind."""

    def __init__(self) -> None:
        self.by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)

    async def subscribe(self, nc: Any) -> None:
        async def on_message(msg: Any) -> None:
            rest = msg.subject.removeprefix(SUBJECTS.base + ".")
            kind = "health" if rest.startswith("provider.health") else rest.split(".", 1)[0]
            self.by_kind[kind].append(json.loads(msg.data))

        for subject in (SUBJECTS.prices, SUBJECTS.market, SUBJECTS.news, SUBJECTS.alerts):
            await nc.subscribe(subject, cb=on_message)
        await nc.subscribe(SUBJECTS.provider_health_all, cb=on_message)
        await nc.flush()  # the subscriptions reach the server before anything is started

    def latest_health(self) -> dict[str, ProviderHealth]:
        return {h["provider_id"]: ProviderHealth.model_validate(h) for h in self.by_kind["health"]}

    async def until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> float:
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > timeout_s:
                raise AssertionError(f"not within {timeout_s} s: {what}")
            await asyncio.sleep(0.1)
        return time.monotonic() - started


async def test_btc_price_market_news_and_every_provider_arrive(
    nats_server: NatsServer, nats_client: Any, start: Callable[..., Awaitable[ServiceProcess]]
) -> None:
    inbox = Inbox()
    await inbox.subscribe(nats_client)
    simulator = await start("pricewire_ingest.simulator", "simulator", {"PRICEWIRE_SIM_SEED": "11"})
    await start("pricewire_ingest", "ingest", _ingest_env(nats_server, simulator))

    btc = lambda: [m for m in inbox.by_kind["price"] if m["data"]["symbol"] == "BTC"]  # noqa: E731
    await inbox.until(lambda: bool(btc()), 30, "a BTC price_update")
    await inbox.until(
        lambda: bool(inbox.by_kind["market"]) and bool(inbox.by_kind["news"]), 30, "market and news"
    )
    await inbox.until(
        lambda: len(inbox.latest_health()) == len(CATALOG.providers), 30, "every provider"
    )

    update = PriceUpdate.model_validate(btc()[-1])
    truth = _get_json(simulator.url("/_truth"))["BTC"]
    assert update.data.price == pytest.approx(truth, rel=0.01)
    assert update.data.sources >= 3
    assert not update.data.stale
    # one vote per upstream: venues each once, sources its length, a finite confidence
    for message in inbox.by_kind["price"]:
        data = PriceUpdate.model_validate(message).data
        assert data.venues == sorted(set(data.venues)), data
        assert data.sources == len(data.venues)
        assert data.confidence is not None and 0 <= data.confidence <= data.price
        assert data.stale or data.sources >= 3
    market = MarketUpdate.model_validate(inbox.by_kind["market"][-1])
    assert "btc" in market.data
    assert market.data["btc"].price > 0
    NewsMessage.model_validate(inbox.by_kind["news"][0])
    mirrors = {pid for pid, h in inbox.latest_health().items() if h.mirror}
    assert mirrors == set(CATALOG.mirrors)
    assert inbox.latest_health()["binance_vision"].upstream == "binance"
    statuses = {h.status for h in inbox.latest_health().values()}
    assert statuses <= {"online", "disabled"}  # only the inactive entries are disabled
    assert sum(h.status == "online" for h in inbox.latest_health().values()) >= 100
    # every provider polled feeds something: no liveness probe is left in the catalog
    assert all(h.feeds and "probe" not in h.feeds for h in inbox.latest_health().values())


@pytest.mark.slow
async def test_thirty_percent_faulted_providers_change_nothing_for_the_others(
    nats_server: NatsServer, nats_client: Any, start: Callable[..., Awaitable[ServiceProcess]]
) -> None:
    inbox = Inbox()
    await inbox.subscribe(nats_client)
    simulator = await start(
        "pricewire_ingest.simulator",
        "simulator",
        {
            "PRICEWIRE_SIM_SEED": "12",
            "PRICEWIRE_SIM_FAULT_FRACTION": "0.3",
            "PRICEWIRE_SIM_FAULT_SEED": "5",
        },
    )
    faults: dict[str, str] = {
        pid: f["mode"] for pid, f in _get_json(simulator.url("/_faults")).items()
    }
    active = [p for p in CATALOG.providers if not p.inactive]
    assert len(faults) >= 0.3 * len(active)
    truth_before = _get_json(simulator.url("/_truth"))
    await start("pricewire_ingest", "ingest", _ingest_env(nats_server, simulator))

    def expected(pid: str) -> str | None:
        """The status a faulted provider must be reported with (None: not a failure)."""
        mode, family = faults[pid], CATALOG.provider(pid).family
        adapter = adapter_for(family)
        if mode == "rate_limit":
            return "rate_limited"
        if mode in ("timeout", "server_error", "error_body"):
            return "offline"
        if mode in ("garbage", "html", "truncated") and family not in (
            "http_probe",
            "esplora_height",
        ):
            return "offline"
        if mode == "bad_price" and adapter.yields_prices:
            return "offline"
        return None

    must_fail = {pid: status for pid in faults if (status := expected(pid))}
    healthy = {p.id for p in active} - set(faults)

    def settled() -> bool:
        latest = inbox.latest_health()
        return all(pid in latest for pid in healthy) and all(
            latest.get(pid) is not None and latest[pid].status == status
            for pid, status in must_fail.items()
        )

    await inbox.until(settled, 60, "every provider polled, every faulted one reported failing")
    await inbox.until(lambda: len(inbox.by_kind["price"]) >= 3 * len(CATALOG.symbols), 30, "prices")

    latest = inbox.latest_health()
    assert {pid for pid in healthy if latest[pid].status != "online"} == set()
    assert all(latest[pid].success_rate == 100.0 for pid in healthy)
    rate_limited = [pid for pid, s in must_fail.items() if s == "rate_limited"]
    assert rate_limited and all(latest[pid].retry_after_s is not None for pid in rate_limited)
    assert any(s == "offline" for s in must_fail.values())

    truth_after = _get_json(simulator.url("/_truth"))
    prices = [PriceUpdate.model_validate(m) for m in inbox.by_kind["price"]]
    for update in prices:
        low = min(truth_before[update.data.symbol], truth_after[update.data.symbol])
        high = max(truth_before[update.data.symbol], truth_after[update.data.symbol])
        assert low * 0.98 <= update.data.price <= high * 1.02, update.data
    assert any(not p.data.stale and p.data.symbol == "BTC" for p in prices)
    outages = [a for a in inbox.by_kind["alert"] if a["data"]["alert_type"] == "provider_outage"]
    assert outages


async def test_a_websocket_client_of_the_edge_gets_btc(
    nats_server: NatsServer, start: Callable[..., Awaitable[ServiceProcess]]
) -> None:
    websockets = pytest.importorskip("websockets.asyncio.client")
    simulator = await start("pricewire_ingest.simulator", "simulator", {"PRICEWIRE_SIM_SEED": "13"})
    edge = await start(
        "pricewire_edge",
        "edge",
        {"PRICEWIRE_NATS_URL": nats_server.url, "PRICEWIRE_DRAIN_WINDOW_S": "0.5"},
    )
    await start("pricewire_ingest", "ingest", _ingest_env(nats_server, simulator))
    async with websockets.connect(edge.url("/ws", scheme="ws")) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert welcome["type"] == "welcome"
        await ws.send(json.dumps({"type": "subscribe", "group": "prices"}))
        deadline = time.monotonic() + 40
        while True:
            assert time.monotonic() < deadline, "no BTC price_update through the edge"
            message = json.loads(await asyncio.wait_for(ws.recv(), 40))
            if message["type"] == "price_update" and message["data"]["symbol"] == "BTC":
                break
    assert message["data"]["price"] > 0
    assert set(message["data"]) >= {"symbol", "price", "change_24h"}
