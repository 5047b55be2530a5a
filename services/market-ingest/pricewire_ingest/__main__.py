"""``python -m pricewire_ingest``: poll the providers, publish on NATS."""

from __future__ import annotations

from pricewire_common.logs import setup_logging
from pricewire_common.runtime import run

from .service import serve
from .settings import IngestSettings


def main() -> None:
    settings = IngestSettings()
    setup_logging(
        "market-ingest", level=settings.log_level, fmt=settings.log_format, file=settings.log_file
    )
    run(lambda: serve(settings))


if __name__ == "__main__":
    main()
