"""ws-edge configuration: ``PRICEWIRE_*`` environment variables (see the README's table)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pricewire_common.settings import ServiceSettings

from .auth import AuthSettings
from .limits import LimitsSettings

__all__ = ["EdgeSettings"]

STATIC_DIR = Path(__file__).parent / "static"


class EdgeSettings(ServiceSettings):
    """Nested groups use ``__``: ``PRICEWIRE_AUTH__MODE=required``, ``PRICEWIRE_LIMITS__...``."""

    model_config = SettingsConfigDict(
        env_prefix="PRICEWIRE_", extra="ignore", env_nested_delimiter="__"
    )

    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    ws_path: str = Field(default="/ws", description="Path of the WebSocket endpoint")
    static_dir: Path = Field(default=STATIC_DIR, description="Folder served at / and /static")
    heartbeat_interval_s: float = Field(default=30.0, gt=0, description="heartbeat to every client")
    report_interval_s: float = Field(
        default=5.0, gt=0, description="How often the edge publishes its EdgeReport"
    )
    stats_timeout_s: float = Field(
        default=2.0, gt=0, description="How long get_stats waits for the stats service"
    )
    send_buffer_bytes: int = Field(
        default=512 * 1024,
        ge=16 * 1024,
        description="Per-client outgoing buffer; past it the client is conflated (latest per symbol)",
    )
    slow_client_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A client stuck behind a full buffer this long is closed (4009)",
    )
    write_pacing_max_s: float = Field(
        default=0.005,
        ge=0,
        le=0.1,
        description=(
            "Under load, a data group's next write to its members waits as long as the last"
            " one took, at most this (fuller writes, fewer syscalls; 0: write every turn)"
        ),
    )
    jetstream_batch_wait_s: float = Field(
        default=0.005,
        ge=0,
        le=0.1,
        description=(
            "While session events and records await JetStream's acknowledgement, the next ones"
            " wait this long to go out together (0: every loop turn)"
        ),
    )
    backlog_messages: int = Field(
        default=256, ge=1, description="News/alerts/broadcasts held for a conflated client"
    )
    history_messages: int = Field(
        default=20_000, ge=1, description="Per-group messages kept in memory for resume"
    )
    snapshot_news: int = Field(default=20, ge=0, description="News items in a subscribe snapshot")
    snapshot_alerts: int = Field(default=20, ge=0, description="Alerts in a subscribe snapshot")
    session_commit_s: float = Field(
        default=1.0,
        gt=0,
        description="A session is announced at its first message or after this long (resume window)",
    )
    drain_window_s: float = Field(
        default=5.0,
        ge=0,
        description="On SIGTERM, client closes (1012) are spread over this window",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="Serve wss:// with this certificate"
    )
    tls_key_file: Path | None = Field(default=None, description="... and this private key")
