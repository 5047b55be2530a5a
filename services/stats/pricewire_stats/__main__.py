"""``python -m pricewire_stats``: the stats process."""

from __future__ import annotations

import logging

from pricewire_common.httpserver import HttpServer
from pricewire_common.logs import setup_logging
from pricewire_common.runtime import run, shutdown_event

from .app import create_app
from .service import StatsService
from .settings import StatsSettings

log = logging.getLogger("pricewire.stats")


async def serve(settings: StatsSettings) -> None:
    stop = shutdown_event()
    service = StatsService(settings)
    http = HttpServer(create_app(service), host=settings.host, port=settings.port)
    await http.start()
    log.info("http listening", extra={"host": settings.host, "port": http.port})
    try:
        await service.start()
        await stop.wait()
        log.info("shutting down")
    finally:
        await http.stop()
        await service.stop()


def main() -> None:
    settings = StatsSettings()
    setup_logging(
        "stats", level=settings.log_level, fmt=settings.log_format, file=settings.log_file
    )
    run(lambda: serve(settings))


if __name__ == "__main__":
    main()
