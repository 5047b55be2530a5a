"""The simulator is as strict as the real APIs: it reads the query (an unknown pair or id in a
batch fails the whole request with the API's own error), answers auth and rate-limit errors
with the real status codes, and its fault modes include every drift case of issue 13. The
catalog's own requests are all valid against it (``make demo`` stays healthy)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from pricewire_ingest.adapters import (
    ParseContext,
    RawResponse,
    RequestSpec,
    adapter_for,
    build_request,
    evaluate,
)
from pricewire_ingest.catalog import Catalog, Provider
from pricewire_ingest.errors import BadResponse, HttpStatusError, PollFailure, RateLimited
from pricewire_ingest.plans import apply_plans
from pricewire_ingest.quotes import PollData
from pricewire_ingest.simulator.faults import DRIFT_MODES, Fault
from pricewire_ingest.simulator.server import Simulator, create_app
from pricewire_ingest.simulator.strict import SimRequest

OVERRIDE = "http://sim"


def _spec(p: Provider, catalog: Catalog, key: str | None = "simulated-key") -> RequestSpec:
    key = key if p.auth.type != "none" else None
    return build_request(
        p, adapter_for(p.family), catalog.assets, key=key, base_url_override=OVERRIDE
    )


def _seen(spec: RequestSpec, **params: str) -> SimRequest:
    pid_and_path = spec.url.removeprefix(OVERRIDE + "/").split("/", 1)
    path = "/" + pid_and_path[1] if len(pid_and_path) > 1 else ""
    headers = {k.lower(): v for k, v in spec.headers.items()}
    return SimRequest(path, {**spec.params, **params}, headers)


async def _poll(
    sim: Simulator, catalog: Catalog, p: Provider, request: SimRequest
) -> tuple[int, Any, PollData | PollFailure]:
    answer = await sim.answer(sim.providers[p.id], request)
    ctx = ParseContext.for_provider(p, catalog.assets, sim.clock())
    headers = {"content-type": answer.content_type}
    try:
        result: PollData | PollFailure = evaluate(
            adapter_for(p.family), RawResponse(answer.status, answer.body, headers), ctx
        )
    except PollFailure as exc:
        result = exc
    body = (
        orjson.loads(answer.body)
        if answer.content_type.startswith("application/json")
        else answer.body
    )
    return answer.status, body, result


@pytest.mark.parametrize("variant", ["default", "cryptopanic_growth", "coingecko_pro"])
async def test_every_request_the_catalog_makes_is_valid_against_the_strict_simulator(
    variant: str, simulator: Simulator, catalog: Catalog
) -> None:
    planned = {
        "default": catalog,
        "cryptopanic_growth": apply_plans(catalog, {}, cryptopanic_plan="growth"),
        "coingecko_pro": apply_plans(catalog, {"COINGECKO_PRO_API_KEY": "k"}, coingecko_plan="pro"),
    }[variant]
    for p in planned.providers:
        if p.inactive:
            continue
        status, _, result = await _poll(simulator, planned, p, _seen(_spec(p, planned)))
        assert 200 <= status < 300, (p.id, status)
        assert isinstance(result, PollData), (p.id, result)
        if adapter_for(p.family).yields_prices:
            assert result.quotes, p.id


async def test_the_simulators_world_knows_every_id_the_catalog_asks_for(
    simulator: Simulator, catalog: Catalog
) -> None:
    for pid in ("binance_public", "kraken", "coingecko", "cg_simple_price", "bitfinex"):
        p = catalog.provider(pid)
        spec = _spec(p, catalog)
        _, _, result = await _poll(simulator, catalog, p, _seen(spec))
        assert isinstance(result, PollData)
        asked = sum(1 for a in catalog.assets if adapter_for(p.family).pair(a)) or len(
            [a for a in catalog.assets if a.id_for("coingecko")]
        )
        assert len(result.quotes) == asked, pid


async def test_binance_unknown_symbol_fails_the_whole_batch_with_400_and_code_1121(
    simulator: Simulator, catalog: Catalog
) -> None:
    p = catalog.provider("binance_public")
    request = _seen(_spec(p, catalog), symbols='["BTCUSDT","FOOUSDT"]')
    status, body, result = await _poll(simulator, catalog, p, request)
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert isinstance(result, HttpStatusError)
    assert "-1121" in result.detail


async def test_kraken_unknown_pair_fails_the_whole_request(
    simulator: Simulator, catalog: Catalog
) -> None:
    p = catalog.provider("kraken")
    for pairs in ("XBTUSD,BNBUSD", "XBTUSD,FOOUSD", ""):
        status, body, result = await _poll(
            simulator, catalog, p, _seen(_spec(p, catalog), pair=pairs)
        )
        assert (status, body) == (200, {"error": ["EQuery:Unknown asset pair"], "result": {}})
        assert isinstance(result, BadResponse) and "Unknown asset pair" in result.detail


async def test_coinmarketcap_unknown_symbol_is_400_and_missing_key_is_401(
    simulator: Simulator, catalog: Catalog
) -> None:
    p = catalog.provider("coinmarketcap_primary_1")
    status, body, result = await _poll(
        simulator, catalog, p, _seen(_spec(p, catalog), symbol="BTC,NOPE")
    )
    assert status == 400 and body["status"]["error_code"] == 400
    assert isinstance(result, HttpStatusError)
    status, body, result = await _poll(simulator, catalog, p, _seen(_spec(p, catalog, key=None)))
    assert (status, body["status"]["error_code"]) == (401, 1002)
    assert isinstance(result, HttpStatusError)


async def test_coingecko_skips_unknown_ids_like_the_real_api(
    simulator: Simulator, catalog: Catalog
) -> None:
    p = catalog.provider("cg_simple_price")
    _, body, result = await _poll(
        simulator, catalog, p, _seen(_spec(p, catalog), ids="bitcoin,not-a-coin")
    )
    assert list(body) == ["bitcoin"]
    assert isinstance(result, PollData) and [q.symbol for q in result.quotes] == ["BTC"]


@pytest.mark.parametrize(
    ("pid", "mode", "status", "outcome"),
    [
        ("coingecko", "bad_key", 401, "http_error"),
        ("cg_simple_price", "bad_key", 401, "http_error"),
        ("coinmarketcap_primary_1", "bad_key", 401, "http_error"),
        ("cryptopanic", "bad_key", 401, "http_error"),
        ("coingecko", "quota_exhausted", 429, "rate_limited"),
        ("coinmarketcap_primary_1", "quota_exhausted", 429, "rate_limited"),
        ("coingecko", "rate_limit", 429, "rate_limited"),
        ("coinmarketcap_primary_1", "rate_limit", 429, "rate_limited"),
        ("bybit", "rate_limit", 403, "rate_limited"),
        ("cryptopanic", "unusable_posts", 200, "bad_response"),
    ],
)
async def test_auth_quota_and_rate_errors_use_the_real_status(
    pid: str, mode: str, status: int, outcome: str, *, simulator: Simulator, catalog: Catalog
) -> None:
    simulator.set_faults({pid: Fault(mode=mode)})  # type: ignore[arg-type]
    p = catalog.provider(pid)
    got, _, result = await _poll(simulator, catalog, p, _seen(_spec(p, catalog)))
    assert got == status
    assert isinstance(result, PollFailure) and result.outcome == outcome
    if pid == "bybit":
        assert isinstance(result, RateLimited) and result.retry_after_s == 600.0


async def test_cryptopanic_answers_per_plan_and_drifts_without_urls(
    simulator: Simulator, catalog: Catalog
) -> None:
    developer = catalog.provider("cryptopanic")
    _, body, result = await _poll(simulator, catalog, developer, _seen(_spec(developer, catalog)))
    assert body["results"] and all("url" not in r for r in body["results"])
    assert isinstance(result, PollData) and result.news
    assert all(e.url.startswith("https://cryptopanic.com/news/") for e in result.news)
    growth = apply_plans(catalog, {}, cryptopanic_plan="growth")
    gp = growth.provider("cryptopanic")
    _, body, result = await _poll(simulator, growth, gp, _seen(_spec(gp, growth)))
    assert all("original_url" in r for r in body["results"])
    assert isinstance(result, PollData)
    assert {e.url for e in result.news} == {r["original_url"] for r in body["results"]}
    simulator.set_faults({"cryptopanic": Fault(mode="posts_without_url")})
    _, body, result = await _poll(simulator, growth, gp, _seen(_spec(gp, growth)))
    assert all("original_url" not in r for r in body["results"])
    assert isinstance(result, PollData) and result.news


async def test_kraken_midnight_open_never_reaches_the_change(
    simulator: Simulator, catalog: Catalog
) -> None:
    simulator.set_faults({"kraken": Fault(mode="midnight_open")})
    p = catalog.provider("kraken")
    _, body, result = await _poll(simulator, catalog, p, _seen(_spec(p, catalog)))
    row = body["result"]["XXBTZUSD"]
    assert abs(float(row["c"][0]) / float(row["o"]) - 1) > 0.1  # "o" far from 24 h ago
    assert isinstance(result, PollData)
    assert all(q.change_24h is None for q in result.quotes)


def test_drift_modes_are_fault_modes_outside_the_random_cycle() -> None:
    from pricewire_ingest.simulator.faults import FAULT_MODES

    assert set(DRIFT_MODES).isdisjoint(FAULT_MODES)
    for mode in DRIFT_MODES:
        Fault(mode=mode)


async def test_over_http_the_path_plan_and_query_are_checked(simulator: Simulator) -> None:
    transport = httpx.ASGITransport(app=create_app(simulator))
    async with httpx.AsyncClient(transport=transport, base_url=OVERRIDE) as client:
        token = {"auth_token": "t", "public": "true"}
        assert (
            await client.get("/cryptopanic/developer/v2/posts/", params=token)
        ).status_code == 200
        assert (await client.get("/cryptopanic/v1/posts/", params=token)).status_code == 404
        assert (await client.get("/cryptopanic/gold/v2/posts/", params=token)).status_code == 404
        no_token = await client.get("/cryptopanic/developer/v2/posts/")
        assert no_token.status_code == 401
        bad = await client.get(
            "/binance_public/api/v3/ticker/24hr", params={"symbols": '["BTCUSDT","X"]'}
        )
        assert (bad.status_code, bad.json()["code"]) == (400, -1121)
        ok = await client.get(
            "/binance_public/api/v3/ticker/24hr", params={"symbols": '["ETHUSDT"]'}
        )
        assert [r["symbol"] for r in ok.json()] == ["ETHUSDT"]
        demo = await client.get(
            "/coingecko/coins/markets",
            params={"vs_currency": "usd", "ids": "bitcoin"},
            headers={"x-cg-demo-api-key": "CG-x"},
        )
        assert [r["id"] for r in demo.json()] == ["bitcoin"]
