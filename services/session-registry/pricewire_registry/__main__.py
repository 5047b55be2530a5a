"""``python -m pricewire_registry``: the session-registry process."""

from __future__ import annotations

import logging

from pricewire_common.httpserver import HttpServer
from pricewire_common.logs import setup_logging
from pricewire_common.runtime import run, shutdown_event

from .api import create_app
from .service import RegistryService
from .settings import RegistrySettings

log = logging.getLogger("pricewire.registry")


async def serve(settings: RegistrySettings) -> None:
    stop = shutdown_event()
    service = RegistryService(settings)
    http = HttpServer(create_app(service), host=settings.host, port=settings.port)
    await http.start()  # /health answers while NATS is still being reached; /ready does not
    log.info("http listening", extra={"host": settings.host, "port": http.port})
    try:
        await service.start()
        await stop.wait()
        log.info("shutting down")
    finally:
        await http.stop()  # in-flight requests finish first
        await service.stop()


def main() -> None:
    settings = RegistrySettings()
    setup_logging(
        "session-registry",
        level=settings.log_level,
        fmt=settings.log_format,
        file=settings.log_file,
    )
    if settings.broadcast_token is None and not settings.dev_mode:
        log.warning("no PRICEWIRE_BROADCAST_TOKEN: POST /api/broadcast is refused (403)")
    run(lambda: serve(settings))


if __name__ == "__main__":
    main()
