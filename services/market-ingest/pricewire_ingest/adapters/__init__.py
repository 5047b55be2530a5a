"""One adapter per API family: the request a poll makes and the parsing of every answer shape,
errors included. Pure code: bytes in, :class:`~pricewire_ingest.quotes.PollData` or a
:class:`~pricewire_ingest.errors.PollFailure` out.

>>> adapter_for("kraken_ticker").family
'kraken_ticker'
"""

from __future__ import annotations

from .aggregators import (
    CoinApiExchangeRate,
    CoinCapAsset,
    CoinCapAssets,
    CoinGeckoCoin,
    CoinGeckoMarkets,
    CoinGeckoSimple,
    CoinLoreTickers,
    CoinMarketCapQuotes,
    CoinpaprikaTicker,
    CoinpaprikaTickers,
    CoinStatsCoins,
    CryptoCompareHistoMinute,
    CryptoComparePriceMultiFull,
    DefiLlamaPrices,
    DiaQuotation,
    MessariMetrics,
)
from .base import (
    Adapter,
    ParseContext,
    RawResponse,
    RequestSpec,
    build_request,
    evaluate,
    feeds_of,
    parse_retry_after,
)
from .chain import (
    BlockchairStats,
    EsploraHeight,
    EtherscanPrice,
    EtherscanProxyBlock,
    EthplorerLastBlock,
    EvmRpc,
    MempoolPrices,
    SolanaRpc,
    TronRpc,
    WhaleAlertStatus,
)
from .exchanges import (
    Binance24hr,
    BinanceKlines,
    BinancePrice,
    BitfinexTickers,
    BitgetTickers,
    BitstampTickers,
    BybitTickers,
    CoinbaseSpot,
    CoinbaseStats,
    CryptoComTickers,
    GateioTickers,
    GeminiPricefeed,
    HtxTickers,
    KrakenTicker,
    KucoinAllTickers,
    OkxTickers,
)
from .feeds import CryptoPanicPosts, FeedAdapter, NewsApiEverything, RedditListing
from .misc import DefiLlamaChains, DefiLlamaStablecoins, FearGreed, GraphqlProbe, HttpProbe

__all__ = [
    "ADAPTERS",
    "Adapter",
    "ParseContext",
    "RawResponse",
    "RequestSpec",
    "adapter_for",
    "build_request",
    "evaluate",
    "feeds_of",
    "parse_retry_after",
]

_CLASSES: tuple[type[Adapter], ...] = (
    CoinGeckoMarkets,
    CoinGeckoSimple,
    CoinGeckoCoin,
    CoinMarketCapQuotes,
    CryptoComparePriceMultiFull,
    CryptoCompareHistoMinute,
    CoinpaprikaTickers,
    CoinpaprikaTicker,
    CoinCapAssets,
    CoinCapAsset,
    CoinLoreTickers,
    MessariMetrics,
    CoinApiExchangeRate,
    DiaQuotation,
    CoinStatsCoins,
    DefiLlamaPrices,
    Binance24hr,
    BinancePrice,
    BinanceKlines,
    KrakenTicker,
    CoinbaseStats,
    CoinbaseSpot,
    BitfinexTickers,
    OkxTickers,
    BybitTickers,
    KucoinAllTickers,
    GateioTickers,
    HtxTickers,
    BitstampTickers,
    GeminiPricefeed,
    BitgetTickers,
    CryptoComTickers,
    FeedAdapter,
    NewsApiEverything,
    CryptoPanicPosts,
    RedditListing,
    EvmRpc,
    SolanaRpc,
    TronRpc,
    EtherscanPrice,
    EtherscanProxyBlock,
    BlockchairStats,
    EthplorerLastBlock,
    EsploraHeight,
    MempoolPrices,
    WhaleAlertStatus,
    FearGreed,
    DefiLlamaChains,
    DefiLlamaStablecoins,
    HttpProbe,
    GraphqlProbe,
)

#: family name -> adapter (adapters are stateless: one instance each)
ADAPTERS: dict[str, Adapter] = {cls.family: cls() for cls in _CLASSES}


def adapter_for(family: str) -> Adapter:
    return ADAPTERS[family]
