"""market-ingest's HTTP endpoints: /health, /ready, /metrics, and read-only views of what the
engine knows (/providers, /prices) for operators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from pricewire_common.metrics import CONTENT_TYPE_LATEST, render_metrics

from .engine import IngestEngine

__all__ = ["create_app"]


def create_app(*, engine: Callable[[], IngestEngine | None], ready: Callable[[], bool]) -> FastAPI:
    """``engine`` returns the engine once built (None while starting); ``ready`` says whether
    NATS is connected and the engine runs."""
    app = FastAPI(title="Pricewire market-ingest", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def readiness() -> Response:
        if ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "starting"}, status_code=503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/providers")
    async def providers() -> list[dict[str, Any]]:
        current = engine()
        if current is None:
            return []
        return [h.model_dump(mode="json", exclude_none=True) for h in current.snapshot()]

    @app.get("/prices")
    async def prices() -> dict[str, Any]:
        current = engine()
        if current is None:
            return {}
        return {
            symbol: {
                "price": p.price,
                "sources": p.sources,
                "stale": p.stale,
                "spread_pct": p.spread_pct,
                "venues": list(p.venues),
                "confidence": p.confidence,
                "confidence_pct": p.confidence_pct,
                "volume_weighted": p.volume_weighted,
                "providers": list(p.providers),
                "rejected": list(p.rejected),
            }
            for symbol, p in current.prices.items()
        }

    return app
