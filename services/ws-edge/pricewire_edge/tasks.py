"""Fire-and-forget tasks whose failure is logged rather than lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["log_failure", "spawn"]

log = logging.getLogger("pricewire.edge")


def spawn(coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` in the background; an exception is logged."""
    task = asyncio.ensure_future(coro)
    task.add_done_callback(log_failure)


def log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())
