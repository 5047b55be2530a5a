"""Publisher agent: price ticks on ``<root>.v1.price.<SYM>`` at a set rate, with nats-py.

Each tick is a ``PriceUpdate`` (the contract the edge forwards) whose ``data.updated_at`` is
the ``time.time()`` of the publish: the clients subtract it from their receive time. Core
``publish`` without a flush per message, as the architecture page asks of every publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

import orjson

from bench.agent import serve, setup_agent_logging
from bench.protocol import Command, Failed, Message, Publish, Published
from pricewire_contracts import SubjectCatalog
from pricewire_contracts.common import utc_timestamp
from pricewire_contracts.server import PriceData, PriceUpdate, dump_extra

log = logging.getLogger("bench.publisher")

SYMBOLS = (
    *("BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "TRX", "TON", "AVAX"),
    *("DOT", "LINK", "MATIC", "SHIB", "LTC", "BCH", "NEAR", "UNI", "ATOM", "XLM"),
    *("ETC", "FIL", "APT", "ARB", "OP", "HBAR", "ICP", "VET", "MKR", "AAVE"),
)


def tick_template(symbol: str, price: float) -> dict[str, Any]:
    """A valid ``price_update`` as a dict (validated once by the contract, then reused)."""
    message = PriceUpdate(
        data=PriceData(
            symbol=symbol,
            price=price,
            change_24h=1.2345,
            sources=5,
            spread_pct=0.0123,
            updated_at=time.time(),
        )
    )
    return dump_extra(message)


class Publisher:
    def __init__(self) -> None:
        self.nc: Any = None
        self.url = ""

    async def _connect(self, url: str) -> Any:
        import nats

        if self.nc is not None and self.url == url and self.nc.is_connected:
            return self.nc
        if self.nc is not None:
            await self.nc.close()
        self.nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=3)
        self.url = url
        return self.nc

    async def publish(self, cmd: Publish) -> Published:
        nc = await self._connect(cmd.nats_url)
        symbols = list(SYMBOLS[: min(cmd.symbols, len(SYMBOLS))])
        catalog = SubjectCatalog(cmd.root)
        subjects = [catalog.price(s) for s in symbols]
        ticks = [tick_template(s, 100.0 + 10 * i) for i, s in enumerate(symbols)]
        await asyncio.sleep(max(0.0, cmd.start_at - time.time()))
        sent = 0
        max_lag = 0.0
        stamp_second = 0
        stamp = utc_timestamp()
        while (now := time.time()) < cmd.stop_at:
            due = int((now - cmd.start_at) * cmd.rate_hz) - sent
            if due > 0:
                max_lag = max(max_lag, due / cmd.rate_hz)
                if int(now) != stamp_second:
                    stamp_second, stamp = int(now), utc_timestamp()
                for _ in range(due):
                    i = sent % len(symbols)
                    tick = ticks[i]
                    data = tick["data"]
                    data["price"] = round(data["price"] * (1 + random.uniform(-1e-4, 1e-4)), 6)
                    tick["timestamp"] = stamp
                    data["updated_at"] = time.time()
                    await nc.publish(subjects[i], orjson.dumps(tick))
                    sent += 1
            # ~1 ms steps: smooth enough at every rate the bench uses, cheap on the client core
            await asyncio.sleep(0.001)
        await nc.flush(timeout=10)
        return Published(
            published=sent, seconds=cmd.stop_at - cmd.start_at, max_lag_ms=max_lag * 1e3
        )

    async def handle(self, cmd: Command) -> Message:
        if isinstance(cmd, Publish):
            return await self.publish(cmd)
        return Failed(error=f"the publisher does not do {cmd.cmd}")

    async def run(self) -> None:
        try:
            await serve(self.handle)
        finally:
            if self.nc is not None:
                await self.nc.close()


def main() -> None:
    import uvloop

    setup_agent_logging("publisher")
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(Publisher().run())


if __name__ == "__main__":
    main()
