"""market-ingest settings (env ``PRICEWIRE_*``). Built in ``main()`` and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pricewire_common.settings import ServiceSettings

__all__ = ["IngestSettings"]


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
    market_interval_s: float = Field(default=5.0, gt=0)
    news_max_age_s: float = Field(
        default=48 * 3600.0, gt=0, description="Older stories are skipped"
    )
    news_per_poll_max: int = Field(default=20, ge=1)

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
