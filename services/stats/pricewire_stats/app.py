"""The stats service's HTTP surface: ``/health``, ``/ready``, ``/metrics``."""

from __future__ import annotations

from typing import Protocol

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from pricewire_common.metrics import CONTENT_TYPE_LATEST, render_metrics

__all__ = ["create_app"]


class _Readiness(Protocol):
    def ready(self) -> bool: ...


def create_app(service: _Readiness) -> FastAPI:
    app = FastAPI(title="Pricewire stats", version="1", docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Response:
        ok = service.ready()
        return JSONResponse(
            {"status": "ready" if ok else "not_ready"}, status_code=200 if ok else 503
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)

    return app
