"""A scripted upstream for browser tests: publishes market data on NATS in the contract shapes.

It stands where market-ingest and the stats service's provider_stats publisher stand, so a
page test can drive the real edge with known data (symbols, news titles, provider names) and
assert on exactly what it sent. It is also handy by hand::

    uv run python tests/browser/upstream.py nats://127.0.0.1:4222
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
from typing import Any

import nats

from pricewire_common.encoding import dumps
from pricewire_contracts import (
    AlertData,
    AlertMessage,
    ChainHeadReading,
    MarketCoin,
    MarketUpdate,
    NewsItem,
    NewsMessage,
    PriceData,
    PriceUpdate,
    ProviderHealth,
    ProviderStatsData,
    ProviderStatsMessage,
    ProviderStatus,
    ProviderSummary,
    SubjectCatalog,
    utc_timestamp,
)

START_PRICES = {
    "BTC": 43250.5,
    "ETH": 2280.4,
    "BNB": 312.7,
    "SOL": 98.3,
    "XRP": 0.6123,
    "ADA": 0.5231,
    "DOGE": 0.08712,
}
SUPPLY = {
    "BTC": 19.6e6,
    "ETH": 120e6,
    "BNB": 153e6,
    "SOL": 430e6,
    "XRP": 54e9,
    "ADA": 35e9,
    "DOGE": 142e9,
}
PROVIDERS = [
    ("coingecko", "CoinGecko", "market_data", "online"),
    ("coincap", "CoinCap", "market_data", "online"),
    ("binance", "Binance", "exchange", "online"),
    ("kraken", "Kraken", "exchange", "online"),
    ("coinbase", "Coinbase", "exchange", "online"),
    ("kucoin", "KuCoin", "exchange", "rate_limited"),
    ("cryptocompare", "CryptoCompare", "market_data", "online"),
    ("messari", "Messari", "market_data", "offline"),
    ("cryptopanic", "CryptoPanic", "news", "online"),
    ("coindesk_rss", "CoinDesk RSS", "news", "online"),
    ("etherscan", "Etherscan", "blockchain", "disabled"),
    ("blockchair", "Blockchair", "blockchain", "online"),
]
NEWS_TITLES = [
    "Bitcoin ETF inflows reach a new weekly high",
    "Ethereum developers schedule the next network upgrade",
    "قیمت بیت‌کوین از ۴۵۰۰۰ دلار عبور کرد",
    "Solana validators roll out a performance patch",
    "Stablecoin supply grows for the fifth month",
]


class ScriptedUpstream:
    """Publishes a random walk of prices, market snapshots, news, alerts and provider health.

    Provider health goes out as ``ProviderHealth`` events, which the stats service turns into
    ``provider_stats``; with ``provider_stats=True`` (no stats service running) the upstream
    publishes ``provider_stats`` itself.
    """

    def __init__(
        self,
        nats_url: str,
        *,
        root: str = "pricewire",
        seed: int = 7,
        provider_stats: bool = False,
    ) -> None:
        self.nats_url = nats_url
        self.direct_provider_stats = provider_stats
        self.subjects = SubjectCatalog(root)
        self.rng = random.Random(seed)
        self.prices = dict(START_PRICES)
        self.open_prices = {
            s: p / (1 + self.rng.uniform(-0.05, 0.05)) for s, p in START_PRICES.items()
        }
        self.tick = 0
        self.nc: Any = None

    async def connect(self) -> None:
        self.nc = await nats.connect(self.nats_url)

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.drain()

    def _change(self, symbol: str) -> float:
        return round((self.prices[symbol] / self.open_prices[symbol] - 1) * 100, 2)

    async def publish_prices(self) -> None:
        for symbol in self.prices:
            self.prices[symbol] *= 1 + self.rng.gauss(0, 0.002)
            price = round(self.prices[symbol], 6)
            venues = sorted(self.rng.sample(VENUES, self.rng.randint(3, len(VENUES))))
            data = PriceData(
                symbol=symbol,
                price=price,
                change_24h=self._change(symbol),
                sources=len(venues),
                venues=venues,
                spread_pct=round(self.rng.uniform(0.01, 0.4), 3),
                confidence=round(price * 0.0006, 6),
                confidence_pct=0.06,
                stale=False,
            )
            await self.nc.publish(self.subjects.price(symbol), dumps(PriceUpdate(data=data)))

    async def publish_market(self) -> None:
        coins = {
            s.lower(): MarketCoin(
                price=round(p, 6),
                change_24h=self._change(s),
                market_cap=round(p * SUPPLY[s]),
                volume_24h=round(p * SUPPLY[s] * 0.03),
            )
            for s, p in self.prices.items()
        }
        await self.nc.publish(self.subjects.market, dumps(MarketUpdate(data=coins)))

    async def publish_news(self) -> None:
        title = NEWS_TITLES[self.tick % len(NEWS_TITLES)]
        url = f"https://news.example.org/{self.tick}"
        item = NewsItem(
            id=hashlib.sha1(url.encode()).hexdigest()[:16],
            title=title,
            url=url,
            source="CoinDesk RSS",
            published_at=utc_timestamp(),
            summary="A scripted news item from the browser tests' upstream.",
        )
        await self.nc.publish(self.subjects.news, dumps(NewsMessage(data=item)))

    async def publish_alert(self) -> None:
        alert = AlertData(
            alert_type="price_threshold",
            message="قیمت بیت‌کوین از ۴۵۰۰۰ دلار عبور کرد",
            severity="info",
            symbol="BTC",
        )
        await self.nc.publish(
            self.subjects.alert("price_threshold"), dumps(AlertMessage(data=alert))
        )

    async def publish_provider_health(self) -> None:
        outcomes = {
            "online": "ok",
            "offline": "timeout",
            "rate_limited": "rate_limited",
            "disabled": "disabled",
        }
        for pid, name, category, status in PROVIDERS:
            event = ProviderHealth(
                provider_id=pid,
                name=name,
                category=category,
                outcome=outcomes[status],
                status=status,
                latency_ms=round(self.rng.uniform(40, 600)) if status == "online" else None,
                breaker="open" if status == "offline" else "closed",
                success_rate=100.0
                if status == "online"
                else (55.0 if status != "offline" else 0.0),
                window_polls=20,
                checked_at=utc_timestamp(),
                **_chain_node(pid),
            )
            await self.nc.publish(self.subjects.provider_health(pid), dumps(event))

    async def publish_provider_stats(self) -> None:
        providers = [
            ProviderStatus(
                provider_id=pid,
                name=name,
                category=category,
                status=status,
                success_rate=100.0
                if status == "online"
                else (55.0 if status != "offline" else 0.0),
                latency_ms=round(self.rng.uniform(40, 600)) if status == "online" else None,
                breaker="open" if status == "offline" else "closed",
                last_checked=utc_timestamp(),
                **_chain_node(pid),
            )
            for pid, name, category, status in PROVIDERS
        ]
        count = {s: sum(1 for p in providers if p.status == s) for s in ("online", "offline")}
        summary = ProviderSummary(
            total_providers=len(providers),
            online=count["online"],
            offline=count["offline"],
            overall_success_rate=round(sum(p.success_rate for p in providers) / len(providers), 1),
            rate_limited=sum(1 for p in providers if p.status == "rate_limited"),
            disabled=sum(1 for p in providers if p.status == "disabled"),
        )
        message = ProviderStatsMessage(data=ProviderStatsData(summary=summary, providers=providers))
        await self.nc.publish(self.subjects.provider_stats, dumps(message))

    async def step(self) -> None:
        await self.publish_prices()
        if self.tick % 2 == 0:
            await self.publish_market()
            await self.publish_provider_health()
            if self.direct_provider_stats:
                await self.publish_provider_stats()
        if self.tick % 6 == 0:
            await self.publish_news()
        if self.tick % 20 == 5:
            await self.publish_alert()
        self.tick += 1
        await self.nc.flush()

    async def run(self, interval_s: float = 0.5) -> None:
        while True:
            await self.step()
            await asyncio.sleep(interval_s)


async def _main(url: str) -> None:
    upstream = ScriptedUpstream(url, provider_stats=True)
    await upstream.connect()
    try:
        await upstream.run()
    finally:
        await upstream.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1] if len(sys.argv) > 1 else "nats://127.0.0.1:4222"))


#: The upstreams the scripted consensus names as its voters.
VENUES = [
    "binance",
    "bitstamp",
    "coinbase",
    "coingecko",
    "kraken",
    "kucoin",
    "okx",
    "bybit",
    "gemini",
]


def _chain_node(provider_id: str) -> dict[str, Any]:
    """What the one chain node of the script (blockchair) feeds and the head it read."""
    if provider_id != "blockchair":
        return {}
    head = ChainHeadReading(chain="bitcoin", height=830_123, behind=1, block_age_s=42.0)
    return {"feeds": ["prices", "chain"], "chain": head}
