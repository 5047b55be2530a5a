"""Structured logging: JSON lines in containers, a readable line on a terminal.

Pass context as ``extra``: ``log.info("session opened", extra={"session_id": sid})``; every
extra key becomes a JSON field. Secrets (tokens, keys) are never passed to a logger.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

__all__ = ["ConsoleFormatter", "JsonFormatter", "setup_logging"]

_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            line += f"  {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(
    service: str, *, level: str = "INFO", fmt: str = "auto", file: str | None = None
) -> None:
    """Configure the root logger once per process."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(JsonFormatter(service) if use_json else ConsoleFormatter())
    root.addHandler(console)
    if file:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(file, encoding="utf-8")
        handler.setFormatter(JsonFormatter(service))
        root.addHandler(handler)
    for noisy in ("nats", "websockets", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
