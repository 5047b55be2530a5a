"""stats configuration: ``PRICEWIRE_*`` environment variables."""

from __future__ import annotations

from pydantic import Field

from pricewire_common.settings import ServiceSettings

__all__ = ["StatsSettings"]


class StatsSettings(ServiceSettings):
    stats_interval_s: float = Field(
        default=30.0, gt=0, description="How often stats_update is published"
    )
    provider_stats_interval_s: float = Field(
        default=30.0, gt=0, description="How often provider_stats is published"
    )
    edge_missed_reports: int = Field(
        default=3, ge=1, description="An edge silent for this many report intervals is dropped"
    )
    persist_interval_s: float = Field(
        default=1.0, gt=0, description="How often changed totals are written to KV"
    )
    boot_retention_s: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="A silent edge boot's counters are folded into the base after this long",
    )
    provider_stale_after_s: float = Field(
        default=300.0, gt=0, description="A provider not heard from this long counts offline"
    )
    provider_forget_after_s: float = Field(
        default=3600.0, gt=0, description="A provider not heard from this long leaves the list"
    )
