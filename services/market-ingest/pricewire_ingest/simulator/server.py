"""The simulated providers' HTTP server (Starlette): ``/<provider id>/<the provider's path>``
answers in that provider's shape; ``/_faults``, ``/_truth`` and ``/_stats`` control and observe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..catalog import Asset, Catalog, Provider
from .faults import Fault
from .render import (
    RENDERERS,
    Answer,
    RenderContext,
    auth_error_answer,
    error_answer,
    feed_hosts,
    quota_answer,
    rate_limit_answer,
)
from .strict import CRYPTOPANIC_PLANS, SimRequest, check, path_matches
from .world import MarketWorld, NewsDesk

__all__ = ["Simulator", "create_app"]

log = logging.getLogger("pricewire.simulator")

_faults_adapter: TypeAdapter[dict[str, Fault | None]] = TypeAdapter(dict[str, Fault | None])

_SERVER_ERROR_PAGE = (
    "<html><head><title>{status} Service Temporarily Unavailable</title></head><body>"
    "<center><h1>{status} Service Temporarily Unavailable</h1></center><hr><center>nginx</center>"
    "</body></html>"
)


class Simulator:
    """The state behind the server: the world, the news desk, the faults, request counts."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        seed: int | None = None,
        volatility_per_s: float = 3e-4,
        jump_interval_s: float = 600.0,
        jump_pct: float = 4.0,
        news_interval_s: float = 45.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalog = catalog
        self.clock = clock
        start = clock()
        self.world = MarketWorld(
            catalog.assets,
            seed=seed,
            start=start,
            volatility_per_s=volatility_per_s,
            jump_interval_s=jump_interval_s,
            jump_pct=jump_pct,
        )
        news_feeds = [p.id for p in catalog.providers if p.category == "news"]
        self.news = NewsDesk(
            news_feeds,
            {a.symbol: a.name for a in catalog.assets},
            interval_s=news_interval_s,
            seed=seed,
            start=start,
        )
        self.providers: dict[str, Provider] = {p.id: p for p in catalog.providers}
        self.hosts = feed_hosts(catalog.providers)
        self.faults: dict[str, Fault] = {}
        self.requests: Counter[str] = Counter()
        self.rng = random.Random(seed)
        #: set on shutdown: held requests (timeout faults) end at once instead of at hang_s
        self.closing = asyncio.Event()

    def set_faults(self, update: dict[str, Fault | None]) -> None:
        unknown = sorted(set(update) - set(self.providers))
        if unknown:
            raise KeyError(f"unknown providers: {unknown}")
        for pid, fault in update.items():
            if fault is None:
                self.faults.pop(pid, None)
            else:
                self.faults[pid] = fault

    def render(
        self,
        provider: Provider,
        price_factor: float = 1.0,
        *,
        assets: list[Asset] | None = None,
        drift: str | None = None,
        request: SimRequest | None = None,
    ) -> Answer:
        now = self.clock()

        def price(symbol: str) -> float:
            return self.world.provider_price(symbol, provider.id, now) * price_factor

        segments = request.path.split("/") if request else []
        ctx = RenderContext(
            provider,
            list(self.catalog.assets) if assets is None else assets,
            self.world,
            self.news,
            now,
            price,
            self.hosts,
            drift=drift,
            plan=next((s for s in segments if s in CRYPTOPANIC_PLANS), None),
        )
        return RENDERERS[provider.family](ctx)

    async def answer(self, provider: Provider, request: SimRequest | None = None) -> Answer:
        """The answer to one request; with ``request`` the query is checked as the real API
        checks it (without, as in unit tests rendering a shape, it is taken as valid)."""
        self.requests[provider.id] += 1
        assets: list[Asset] | None = None
        if request is not None:
            checked = check(provider, request, self.catalog.assets)
            if isinstance(checked, Answer):
                return checked
            assets = list(checked)

        def render(price_factor: float = 1.0, drift: str | None = None) -> Answer:
            return self.render(provider, price_factor, assets=assets, drift=drift, request=request)

        fault = self.faults.get(provider.id)
        if fault is None or self.rng.random() >= fault.probability:
            return render()
        mode = fault.mode
        if mode == "latency":
            await asyncio.sleep(fault.latency_s)
            return render()
        if mode == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), timeout=fault.hang_s)
            return render()
        if mode == "bad_key":
            return auth_error_answer(provider.family, missing=False)
        if mode == "quota_exhausted":
            return quota_answer(provider.family)
        if mode in ("posts_without_url", "unusable_posts", "midnight_open"):
            return render(drift=mode)
        if mode == "rate_limit":
            return rate_limit_answer(provider.family)
        if mode == "server_error":
            page = _SERVER_ERROR_PAGE.format(status=fault.status)
            return Answer(fault.status, "text/html", page.encode())
        if mode == "garbage":
            return Answer(200, "application/json", self.rng.randbytes(512))
        if mode == "error_body":
            return error_answer(provider.family)
        if mode == "truncated":
            normal = render()
            return Answer(
                normal.status, normal.content_type, normal.body[: max(1, len(normal.body) // 2)]
            )
        if mode == "html":
            return Answer(
                200,
                "text/html",
                b"<!DOCTYPE html><html><body><h1>Attention Required!</h1></body></html>",
            )
        if mode == "bad_price":
            return render(price_factor=0.0)
        return render(price_factor=1.5)  # wild_price


def create_app(sim: Simulator) -> Starlette:
    async def provider_route(request: Request) -> Response:
        pid = request.path_params["provider_id"]
        provider = sim.providers.get(pid)
        if provider is None:
            return JSONResponse({"error": f"no simulated provider {pid!r}"}, status_code=404)
        path = "/" + request.path_params.get("path", "") if request.path_params.get("path") else ""
        if not path_matches(provider, path):
            return JSONResponse(
                {"error": f"{pid} answers {provider.endpoint.path or '/'}, not {path or '/'}"},
                status_code=404,
            )
        seen = SimRequest(
            path, dict(request.query_params), {k.lower(): v for k, v in request.headers.items()}
        )
        answer = await sim.answer(provider, seen)
        headers = {}
        if answer.status == 429:
            fault = sim.faults.get(pid)
            headers["Retry-After"] = f"{fault.retry_after_s:g}" if fault else "5"
        return Response(
            answer.body, status_code=answer.status, media_type=answer.content_type, headers=headers
        )

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            sim.faults.clear()
        elif request.method == "POST":
            try:
                update = _faults_adapter.validate_json(await request.body())
                sim.set_faults(update)
            except (ValidationError, KeyError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            log.info("faults changed", extra={"faulted": len(sim.faults)})
        body: dict[str, Any] = {pid: f.model_dump() for pid, f in sorted(sim.faults.items())}
        return Response(orjson.dumps(body), media_type="application/json")

    async def truth(request: Request) -> Response:
        return Response(orjson.dumps(sim.world.truth(sim.clock())), media_type="application/json")

    async def stats(request: Request) -> Response:
        return Response(orjson.dumps(dict(sim.requests)), media_type="application/json")

    async def ok(request: Request) -> Response:
        return JSONResponse({"status": "ok", "providers": len(sim.providers)})

    routes = [
        Route("/health", ok),
        Route("/ready", ok),
        Route("/_faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_truth", truth),
        Route("/_stats", stats),
        Route("/{provider_id}", provider_route, methods=["GET", "POST"]),
        Route("/{provider_id}/{path:path}", provider_route, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes)
