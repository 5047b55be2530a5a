"""Process entry helpers: uvloop, logging and graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["run", "shutdown_event"]


def shutdown_event() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT (a second one exits at once)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def _on_signal() -> None:
        if stop.is_set():
            raise SystemExit(1)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, _on_signal)
    return stop


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main`` on uvloop where available (the fastest loop for many sockets)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - non-Linux development machines
        asyncio.run(main())
    else:
        uvloop.run(main())
