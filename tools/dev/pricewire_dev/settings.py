"""The launcher's options: command-line flags, with ``PRICEWIRE_DEV_*`` environment defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LauncherSettings", "Providers"]

Providers = Literal["live", "simulated"]


class LauncherSettings(BaseSettings):
    """What ``python -m pricewire_dev run`` starts and where.

    Its own prefix, not ``PRICEWIRE_``: the plain ``PRICEWIRE_*`` variables of the user's
    shell are meant for the services and passed through to them.

    Usage::

        LauncherSettings(providers="simulated", port=8000, ports_from=8100)
    """

    model_config = SettingsConfigDict(env_prefix="PRICEWIRE_DEV_", extra="ignore")

    providers: Providers = Field(default="live", description="live APIs or the local simulator")
    host: str = Field(default="127.0.0.1", description="Address the dev gateway binds to")
    port: int = Field(default=8000, ge=0, le=65535, description="The dev gateway's port")
    ports_from: int = Field(
        default=8100,
        ge=1,
        le=65530,
        description="Services listen on ports_from+1 (ws-edge) .. ports_from+5 (simulator)",
    )
    nats_port: int = Field(default=4222, ge=1, le=65535, description="Used when free")
    nats_monitor_port: int = Field(default=8222, ge=1, le=65535, description="Used when free")
    run_dir: Path = Field(default=Path(".run"), description="nats-server's JetStream store")
    log_file: Path = Field(default=Path("logs/app.log"), description="Every process appends here")
    ready_timeout_s: float = Field(default=90.0, gt=0, description="Wait for every GET /ready")
    stop_timeout_s: float = Field(
        default=15.0, gt=0, description="Grace after SIGTERM before SIGKILL"
    )
