"""``python -m pricewire_edge``: the WebSocket edge."""

from __future__ import annotations

from pricewire_common.logs import setup_logging
from pricewire_common.runtime import run, shutdown_event

from .app import EdgeApp
from .settings import EdgeSettings


async def serve(settings: EdgeSettings) -> None:
    app = EdgeApp(settings)
    stop = shutdown_event()
    await app.start()
    await stop.wait()
    await app.stop(drain_window_s=settings.drain_window_s)


def main() -> None:
    settings = EdgeSettings()
    setup_logging(
        "ws-edge", level=settings.log_level, fmt=settings.log_format, file=settings.log_file
    )
    run(lambda: serve(settings))


if __name__ == "__main__":
    main()
