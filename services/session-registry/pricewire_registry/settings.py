"""session-registry configuration: ``PRICEWIRE_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr

from pricewire_common.settings import ServiceSettings

__all__ = ["RegistrySettings"]


class RegistrySettings(ServiceSettings):
    report_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="Report interval assumed for an edge until its first report says otherwise",
    )
    edge_missed_reports: int = Field(
        default=3, ge=1, description="An edge silent for this many report intervals is lost"
    )
    reconcile_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="How long a reconciliation waits for each page of an edge's session list",
    )
    broadcast_token: SecretStr | None = Field(
        default=None, description="Bearer token POST /api/broadcast requires"
    )
    dev_mode: bool = Field(
        default=False, description="Development: broadcast allowed without a token"
    )
    broadcast_max_bytes: int = Field(
        default=64 * 1024, ge=256, description="Largest POST /api/broadcast body (413 beyond)"
    )
    stats_timeout_s: float = Field(
        default=2.0, gt=0, description="How long GET /api/sessions/stats waits for stats"
    )
    tombstone_ttl_s: float = Field(
        default=600.0,
        gt=0,
        description="How long a closed session's record stays in KV (orders late events)",
    )
    sweep_interval_s: float = Field(
        default=1.0, gt=0, description="How often lost edges and old records are looked for"
    )
    consumer_name: str = Field(
        default="session-registry",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Durable consumer shared by every registry replica",
    )
