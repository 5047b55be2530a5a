"""Prometheus helpers shared by every service (one process per pod: the default registry).

Names follow the conventions: ``pricewire_`` prefix, ``_total`` for counters, base units
(``_seconds``, ``_bytes``), label values from small fixed sets only.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "NATS_CONNECTED",
    "NATS_DISCONNECTS",
    "NATS_ERRORS",
    "NATS_RECONNECTS",
    "render_metrics",
]

# ``*_created`` series double every counter's output for little use on a scrape-based setup
disable_created_metrics()  # type: ignore[no-untyped-call]

NATS_CONNECTED = Gauge("pricewire_nats_connected", "1 while the NATS connection is up")
NATS_RECONNECTS = Counter("pricewire_nats_reconnects_total", "NATS reconnections")
NATS_DISCONNECTS = Counter("pricewire_nats_disconnects_total", "NATS disconnections")
NATS_ERRORS = Counter(
    "pricewire_nats_errors_total",
    "Asynchronous NATS errors by kind",
    ["kind"],  # slow_consumer | other
)


def render_metrics() -> bytes:
    return generate_latest()
