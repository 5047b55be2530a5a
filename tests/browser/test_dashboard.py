"""The live dashboard (/) in a real Chromium: prices, market summary, provider health, news,
alerts, the online count; at desktop and phone width; every asset from the edge itself."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOADED = 30_000

PRICE_ROWS = "() => document.querySelectorAll('#prices-body tr').length"
PROVIDER_ROWS = "() => document.querySelectorAll('#providers-body tr').length"


async def open_dashboard(
    browser: Any, kit: Any, base_url: str, **viewport: int
) -> tuple[Any, Any, list[str]]:
    page = await browser.new_page(viewport=viewport or {"width": 1366, "height": 900})
    log = kit.watch(page)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    await page.goto(f"{base_url}/")
    return page, log, requested


def _same_origin(urls: list[str], base_url: str) -> list[str]:
    """Requests that leave the edge's origin (a CDN, a web font): there must be none."""
    origin = urlparse(base_url).netloc
    return [
        u
        for u in urls
        if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).netloc != origin
    ]


async def test_dashboard_shows_prices_and_provider_health_from_the_edge(
    browser: Any, kit: Any, edge_stack: Any
) -> None:
    page, log, requested = await open_dashboard(browser, kit, edge_stack.base_url)
    await page.wait_for_function(f"({PRICE_ROWS})() >= 7", timeout=LOADED)
    await page.wait_for_function(f"({PROVIDER_ROWS})() >= 12", timeout=LOADED)

    btc = page.locator("#price-row-BTC")
    price = (await btc.locator("td.price").text_content()) or ""
    assert float(price.replace(",", "")) > 1000
    change = btc.locator(".change")
    assert (await change.get_attribute("class") or "").split()[-1] in ("up", "down")
    assert int((await btc.locator("td.sources").text_content()) or "0") >= 3
    # on hover: the upstreams that voted, and the consensus interval
    voters = (await btc.locator("td.sources").get_attribute("title") or "").split("، ")
    assert len(voters) >= 3 and voters == sorted(set(voters))
    assert (await btc.locator("td.spread").get_attribute("title") or "").startswith("± ")
    # The sparkline is drawn from live updates: several points after a few ticks.
    await page.wait_for_function(
        "() => document.querySelector('#price-row-BTC polyline').getAttribute('points')"
        ".split(' ').length >= 3",
        timeout=LOADED,
    )

    # Provider health from provider_stats: the scripted upstream has one offline provider.
    assert await page.text_content("#prov-total") == "12"
    assert await page.text_content("#prov-offline") == "1"
    assert (
        await page.get_attribute('#providers-body tr[data-provider="messari"]', "data-status")
        == "offline"
    )
    # a chain node's row shows its head, and what the provider feeds
    blockchair = '#providers-body tr[data-provider="blockchair"]'
    assert await page.get_attribute(blockchair, "data-chain") == "bitcoin"
    assert await page.get_attribute(blockchair, "data-feeds") == "prices chain"
    head = await page.text_content(f"{blockchair} .chain-head") or ""
    assert head.startswith("bitcoin #830,123 · 42 s") and "1" in head
    # Market summary and news.
    assert await page.text_content("#sum-symbols") == "7"
    await page.wait_for_function(
        "() => document.getElementById('sum-market-cap').textContent.startsWith('$')",
        timeout=LOADED,
    )
    await page.wait_for_function(
        "() => document.querySelectorAll('#news-list li').length >= 1", timeout=LOADED
    )
    assert await page.get_attribute("#ws-connection-status", "data-state") == "connected"

    await page.screenshot(path=kit.shot_path("dashboard-desktop"), full_page=True)
    assert log.problems() == []
    assert _same_origin(requested, edge_stack.base_url) == []


async def test_dashboard_fits_a_phone(browser: Any, kit: Any, edge_stack: Any) -> None:
    page, log, _ = await open_dashboard(browser, kit, edge_stack.base_url, width=390, height=844)
    await page.wait_for_function(f"({PRICE_ROWS})() >= 7", timeout=LOADED)
    await page.wait_for_function(f"({PROVIDER_ROWS})() >= 12", timeout=LOADED)
    # Nothing wider than the screen: no sideways scrolling of the page.
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    for table in (".area-prices .table-wrap", ".area-providers .table-wrap"):
        sideways = await page.evaluate(
            f"(() => {{ const w = document.querySelector('{table}');"
            " return w.scrollWidth - w.clientWidth; })()"
        )
        assert sideways <= 0, table
    await page.screenshot(path=kit.shot_path("dashboard-phone"), full_page=True)
    assert log.problems() == []


async def test_dashboard_alert_arrives_as_a_toast(browser: Any, kit: Any, edge_stack: Any) -> None:
    page, log, _ = await open_dashboard(browser, kit, edge_stack.base_url)
    await page.wait_for_function(f"({PRICE_ROWS})() >= 1", timeout=LOADED)
    await edge_stack.upstream.publish_alert()
    await page.wait_for_selector("#toasts .toast", timeout=LOADED)
    text = await page.text_content("#toasts .toast .toast-text")
    assert text == "قیمت بیت‌کوین از ۴۵۰۰۰ دلار عبور کرد"
    assert log.problems() == []


@pytest.mark.timeout(300)
async def test_dashboard_under_the_simulated_providers(
    browser: Any, kit: Any, full_stack: Any
) -> None:
    """The product as `make demo` starts it: live prices, provider health and the online count."""
    page, log, requested = await open_dashboard(browser, kit, full_stack.base_url)
    await page.wait_for_function(f"({PRICE_ROWS})() >= 3", timeout=LOADED * 4)
    await page.wait_for_function(f"({PROVIDER_ROWS})() >= 5", timeout=LOADED * 4)
    await page.wait_for_function(
        "() => document.getElementById('active-users-count').textContent === '1'",
        timeout=LOADED * 2,
    )
    assert int(await page.text_content("#prov-total") or "0") >= 5
    await page.screenshot(path=kit.shot_path("dashboard-simulated"), full_page=True)
    assert log.problems() == []
    assert _same_origin(requested, full_stack.base_url) == []
