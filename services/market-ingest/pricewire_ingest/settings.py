"""market-ingest settings (env ``PRICEWIRE_*``). Built in ``main()`` and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pricewire_common.settings import ServiceSettings

__all__ = ["STREAM_VENUES", "IngestSettings", "StreamVenue"]

StreamVenue = Literal["binance", "coinbase", "kraken", "okx", "bybit", "bitstamp"]
STREAM_VENUES: tuple[StreamVenue, ...] = (
    "binance",
    "coinbase",
    "kraken",
    "okx",
    "bybit",
    "bitstamp",
)


class IngestSettings(ServiceSettings):
    # -- catalog and sharding ----------------------------------------------------------
    catalog_file: str | None = Field(
        default=None, description="Another catalog file than the packaged one"
    )
    provider_base_url_override: str | None = Field(
        default=None,
        description="Replace every provider's base URL by <override>/<provider id> (the simulator)",
    )
    simulated_keys: bool = Field(
        default=False,
        description="With the override set, give keyed providers a placeholder key (demo only)",
    )
    shard_index: int = Field(default=0, ge=0, description="This replica's shard")
    shard_count: int = Field(
        default=1, ge=1, description="How many ingest replicas split the catalog"
    )
    consensus_shard: int = Field(
        default=0,
        ge=0,
        description="The shard that publishes prices and market updates; the others forward "
        "their quotes to it inside their ProviderHealth events",
    )

    # -- polling -----------------------------------------------------------------------
    poll_concurrency: int = Field(default=32, ge=1, le=1024, description="Polls in flight at most")
    poll_interval_scale: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="Multiplies every poll interval (and divides rate limits): <1 speeds the "
        "simulator up for demos and tests; keep 1 against real providers",
    )
    poll_jitter_ratio: float = Field(default=0.1, ge=0, lt=1)
    initial_spread_s: float = Field(default=5.0, ge=0, description="First polls spread over this")
    request_timeout_s: float | None = Field(
        default=None, gt=0, description="Overrides the catalog's"
    )
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    retry_base_s: float = Field(
        default=2.0, gt=0, description="First retry after a failure (doubles)"
    )
    breaker_failure_threshold: int = Field(default=3, ge=1)
    breaker_open_base_s: float = Field(default=30.0, gt=0)
    breaker_open_max_s: float = Field(default=600.0, gt=0)
    user_agent: str = "pricewire-ingest/0.1 (market data monitor)"

    # -- provider plans ------------------------------------------------------------------
    cryptopanic_plan: str = Field(
        default="developer",
        pattern=r"^[a-z0-9_-]{1,32}$",
        description="CryptoPanic API plan: the path segment of /api/<plan>/v2/posts/ "
        "(developer, growth, enterprise)",
    )
    coingecko_plan: Literal["demo", "pro"] = Field(
        default="demo",
        description="CoinGecko plan of the key: demo (api.coingecko.com, x-cg-demo-api-key, "
        "key in COINGECKO_DEMO_API_KEY) or pro (pro-api.coingecko.com, x-cg-pro-api-key, key in "
        "COINGECKO_PRO_API_KEY)",
    )
    coingecko_monthly_calls: int = Field(
        default=10_000,
        ge=1,
        description="The key's monthly call allowance (Demo: 10,000); a keyed install spreads it "
        "over the CoinGecko entries: each polls at most every entries * 30 days / allowance",
    )

    # -- health ------------------------------------------------------------------------
    health_window_s: float = Field(default=600.0, gt=0, description="Success-rate window")
    health_refresh_s: float = Field(
        default=30.0, gt=0, description="Re-send each provider's last health at least this often"
    )
    no_network_grace_s: float = Field(
        default=30.0, gt=0, description="Live mode: when to say that no provider answers"
    )

    # -- consensus and publishing --------------------------------------------------------
    consensus_window_s: float = Field(default=120.0, gt=0, description="Quotes older are stale")
    consensus_min_sources: int = Field(default=3, ge=1)
    consensus_max_deviation_pct: float = Field(default=2.0, gt=0, description="Outlier cut-off")
    price_tick_s: float = Field(default=1.0, gt=0)
    price_refresh_s: float = Field(default=30.0, gt=0, description="Re-publish unchanged prices")
    price_min_interval_s: float = Field(
        default=0.1,
        gt=0,
        description="A symbol's price_update goes out at most this often, and only when it "
        "changed; streamed ticks recompute the symbol's consensus at most this often too (a "
        "burst is one recomputation at the end of the interval)",
    )
    market_interval_s: float = Field(default=5.0, gt=0)
    news_max_age_s: float = Field(
        default=48 * 3600.0, gt=0, description="Older stories are skipped"
    )
    news_per_poll_max: int = Field(default=20, ge=1)

    # -- streaming (the exchanges' public WebSocket feeds, beside REST polling) ------------
    stream_enabled: bool = Field(
        default=False,
        description="Stream ticks from the venues' public WebSocket feeds (the consensus shard "
        "only); REST polling stays the breadth and the fallback",
    )
    stream_venues: list[StreamVenue] = Field(
        default_factory=lambda: list(STREAM_VENUES),
        description='JSON list of the venues to stream, e.g. ["binance", "kraken"]',
    )
    stream_urls: dict[StreamVenue, str] = Field(
        default_factory=dict,
        description="JSON: a venue's WebSocket URL instead of its public endpoint, e.g. "
        '{"binance": "ws://127.0.0.1:9000/binance"}',
    )
    stream_base_url_override: str | None = Field(
        default=None,
        pattern=r"^wss?://",
        description="Replace every venue's URL by <override>/<venue> (the simulated venues)",
    )
    stream_stall_s: dict[StreamVenue, float] = Field(
        default_factory=dict,
        description="JSON: seconds without any message after which a venue's connection is "
        "taken as stalled and reconnected (default per venue: 10 s with heartbeats, 30-60 s "
        'without), e.g. {"okx": 20}',
    )
    stream_backoff_base_s: float = Field(
        default=0.5, gt=0, description="First reconnect delay ceiling (full jitter, doubling)"
    )
    stream_backoff_max_s: float = Field(default=30.0, gt=0, description="Reconnect delay cap")
    stream_offline_after_s: float = Field(
        default=30.0,
        gt=0,
        description="A venue whose stream is down this long is offline (before: degraded)",
    )
    stream_publish_ticks: bool = Field(
        default=True, description="Publish each tick on core NATS tick.<venue>.<SYMBOL>"
    )
    stream_health_s: float = Field(
        default=5.0, gt=0, description="How often each venue stream's health is published"
    )

    @property
    def stream_url_for(self) -> dict[StreamVenue, str]:
        """The URL each streamed venue is reached at ("" : the venue's public endpoint)."""
        urls: dict[StreamVenue, str] = {}
        for venue in self.stream_venues:
            if venue in self.stream_urls:
                urls[venue] = self.stream_urls[venue]
            elif self.stream_base_url_override:
                urls[venue] = f"{self.stream_base_url_override.rstrip('/')}/{venue}"
            else:
                urls[venue] = ""
        return urls

    # -- alerts ----------------------------------------------------------------------------
    alert_price_levels: dict[str, list[float]] = Field(
        default_factory=dict, description='JSON, e.g. {"BTC": [45000, 50000]}'
    )
    alert_level_steps: dict[str, float] = Field(
        default_factory=lambda: {"BTC": 1000.0, "ETH": 100.0},
        description="Every multiple of the step is a level",
    )
    alert_hysteresis_pct: float = Field(default=0.2, ge=0)
    alert_move_pct: float = Field(default=3.0, gt=0)
    alert_move_critical_pct: float = Field(default=7.0, gt=0)
    alert_move_window_s: float = Field(default=300.0, gt=0)
    alert_cooldown_s: float = Field(default=900.0, ge=0)
    alert_locale: Literal["fa", "en"] = "fa"
    alert_dislocation_pct: float = Field(
        default=0.5,
        ge=0,
        description="A dislocation alert when a symbol's consensus confidence_pct reaches this "
        "(the upstreams disagree); 0 turns it off",
    )
    alert_dislocation_clear_pct: float = Field(
        default=0.25,
        ge=0,
        description="The dislocation clears once confidence_pct is back at or below this "
        "(below alert_dislocation_pct, so it does not flap)",
    )

    @model_validator(mode="after")
    def _dislocation_hysteresis(self) -> IngestSettings:
        if self.alert_dislocation_pct and (
            self.alert_dislocation_clear_pct >= self.alert_dislocation_pct
        ):
            raise ValueError(
                f"alert_dislocation_clear_pct {self.alert_dislocation_clear_pct} must be below "
                f"alert_dislocation_pct {self.alert_dislocation_pct}"
            )
        return self

    @model_validator(mode="after")
    def _shard_in_range(self) -> IngestSettings:
        if self.shard_index >= self.shard_count:
            raise ValueError(
                f"shard_index {self.shard_index} must be below shard_count {self.shard_count}"
            )
        return self

    @property
    def publishes_prices(self) -> bool:
        return self.shard_index == self.consensus_shard % self.shard_count

    @property
    def forwards_quotes(self) -> bool:
        return self.shard_count > 1 and not self.publishes_prices

    @property
    def simulated(self) -> bool:
        return bool(self.provider_base_url_override)
