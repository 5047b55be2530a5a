"""Simulator settings (env ``PRICEWIRE_*``; the CLI flags of ``python -m
pricewire_ingest.simulator`` override them)."""

from __future__ import annotations

from pydantic import Field

from pricewire_common.settings import ServiceSettings

__all__ = ["SimulatorSettings"]


class SimulatorSettings(ServiceSettings):
    catalog_file: str | None = None
    sim_seed: int | None = Field(default=None, description="Fixes the random walk and the news")
    sim_volatility_per_s: float = Field(
        default=3e-4, ge=0, description="Per-second sigma of log price"
    )
    sim_jump_interval_s: float = Field(
        default=600.0, ge=0, description="Mean time between jumps (0: none)"
    )
    sim_jump_pct: float = Field(default=4.0, ge=0)
    sim_news_interval_s: float = Field(default=45.0, gt=0, description="A new story this often")
    sim_faults: str | None = Field(
        default=None, description='JSON: {"<provider id>": {"mode": "timeout", ...}, ...}'
    )
    sim_fault_fraction: float = Field(
        default=0.0, ge=0, le=1, description="Fault this share of providers"
    )
    sim_fault_seed: int = 0
    sim_venues_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve the simulated exchange WebSocket venues on this port, one per path "
        "(ws://host:port/binance, ...; 0: a free port); unset: none",
    )
    sim_venue_tick_s: float = Field(
        default=0.1, gt=0, description="Each simulated venue ticks every pair this often"
    )
