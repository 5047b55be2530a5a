"""Settings base: every service reads its configuration from ``PRICEWIRE_*`` environment variables.

Build the settings in ``main()`` and pass them down (no import-time singleton), so a test can
make its own::

    settings = EdgeSettings(port=0, nats_url="nats://127.0.0.1:4333")
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pricewire_contracts import SubjectCatalog

from .streams import StreamLimits

__all__ = ["ServiceSettings"]


class ServiceSettings(BaseSettings):
    """What every service shares. Each service subclasses it with its own fields."""

    model_config = SettingsConfigDict(env_prefix="PRICEWIRE_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to")
    port: int = Field(default=8000, ge=0, le=65535, description="HTTP port (0: any free port)")
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="Comma-separated NATS server URLs (a cluster's seeds)",
    )
    nats_root: str = Field(default="pricewire", description="First token of every subject")
    nats_stream_replicas: int = Field(
        default=1, ge=1, le=5, description="JetStream replicas of every stream (3 on a cluster)"
    )
    nats_history_s: float = Field(
        default=900.0,
        gt=0,
        description="How far back the data streams keep history (resume window)",
    )
    max_outage_s: float = Field(
        default=30.0,
        gt=0,
        description="/ready fails once NATS has been gone this long (the orchestrator restarts the pod)",
    )
    nats_connect_timeout_s: float = Field(default=2.0, gt=0)
    nats_reconnect_wait_s: float = Field(default=0.5, gt=0, description="Base reconnect delay")
    instance_id: str = Field(
        default_factory=lambda: uuid.uuid4().hex[:12],
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Names this replica in subjects and reports (a pod name in Kubernetes)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console on a terminal, JSON otherwise"
    )
    log_file: str | None = Field(
        default=None, description="Also append JSON logs to this file (the guide's logs/app.log)"
    )

    @property
    def subjects(self) -> SubjectCatalog:
        return SubjectCatalog(self.nats_root)

    @property
    def stream_limits(self) -> StreamLimits:
        return StreamLimits(history_s=self.nats_history_s, replicas=self.nats_stream_replicas)

    @property
    def nats_servers(self) -> list[str]:
        return [u.strip() for u in self.nats_url.split(",") if u.strip()]
