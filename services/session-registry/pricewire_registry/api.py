"""The REST API (FastAPI): the guide's ``/api/sessions``, ``/api/sessions/stats``,
``/api/broadcast``, plus ``/health``, ``/ready``, ``/metrics``. OpenAPI at ``/docs``."""

from __future__ import annotations

import time
from typing import Annotated, Any, Protocol

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pricewire_common.metrics import CONTENT_TYPE_LATEST, render_metrics
from pricewire_contracts import BroadcastMessage, ClientType, ConnectionStats, Group

from .broadcast import BroadcastRefused, check_token, parse_broadcast
from .errors import StatsUnavailable
from .metrics import BROADCASTS, REQUEST_SECONDS
from .settings import RegistrySettings
from .store import SessionStore
from .table import CURSOR_PATTERN, CursorError, SessionInfo, decode_cursor, page_sessions

__all__ = ["Registry", "create_app"]


class Registry(Protocol):
    """What the API needs from the service (a test may pass its own)."""

    settings: RegistrySettings
    store: SessionStore | None

    def ready(self) -> bool: ...

    async def ask_stats(self) -> ConnectionStats: ...

    async def broadcast(self, message: BroadcastMessage) -> str: ...


class SessionCounts(BaseModel):
    active_connections: int = Field(ge=0, description="Live sessions in the registry")
    total_sessions: int = Field(ge=0, description="Sessions ever opened (resumes not counted)")


class SessionsResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "The guide's shape"})

    sessions: dict[str, SessionInfo]
    stats: SessionCounts
    next_cursor: str | None = Field(
        default=None,
        description="Only with `limit`/`cursor`: pass it as `cursor` for the next page; "
        "absent on the last page",
    )


class SessionDetail(SessionInfo):
    edge_id: str = Field(description="The ws-edge instance holding the connection")


class Problem(BaseModel):
    detail: str


class Accepted(BaseModel):
    status: str = "accepted"
    group: Group
    subject: str


_BROADCAST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["message", "group"],
                "additionalProperties": False,
                "properties": {
                    "message": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"type": "string", "minLength": 1}},
                        "additionalProperties": True,
                        "description": "Delivered to the clients as is",
                    },
                    "group": {"type": "string", "enum": [g.value for g in Group]},
                },
            },
            "example": {
                "message": {"type": "notification", "text": "سیستم به‌روز شد"},
                "group": "all",
            },
        }
    },
}


def _problem(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


def create_app(service: Registry) -> FastAPI:
    settings = service.settings
    app = FastAPI(
        title="Pricewire session-registry",
        version="1",
        description="Sessions of every ws-edge, connection statistics and broadcast.",
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return _problem(422, f"{where}: {first.get('msg', 'invalid')}")

    def store() -> SessionStore | None:
        if service.store is None or not service.store.loaded.is_set():
            return None
        return service.store

    @app.get(
        "/api/sessions",
        response_model=SessionsResponse,
        response_model_exclude_none=True,
        responses={
            422: {"model": Problem, "description": "An invalid query parameter"},
            503: {"model": Problem, "description": "Sessions still loading"},
        },
        summary="Live sessions, keyed by session id",
    )
    async def list_sessions(
        client_type: Annotated[ClientType | None, Query(description="Only this type")] = None,
        limit: Annotated[int | None, Query(ge=1, le=10_000, description="Page size")] = None,
        cursor: Annotated[
            str | None,
            Query(pattern=CURSOR_PATTERN, description="`next_cursor` of the page before"),
        ] = None,
    ) -> Any:
        sessions = store()
        if sessions is None:
            return _problem(503, "sessions are still loading", **{"Retry-After": "1"})
        try:
            after = decode_cursor(cursor) if cursor is not None else None
        except CursorError as exc:
            return _problem(400, str(exc))
        page = page_sessions(sessions.records(), client_type=client_type, limit=limit, after=after)
        return SessionsResponse(
            sessions={s.session_id: s for s in page.sessions},
            stats=SessionCounts(
                active_connections=sessions.live_count(), total_sessions=sessions.total_sessions
            ),
            next_cursor=page.next_cursor,
        )

    @app.get(
        "/api/sessions/stats",
        response_model=ConnectionStats,
        responses={503: {"model": Problem, "description": "The stats service did not answer"}},
        summary="Connection statistics (the same numbers as stats_update)",
    )
    async def session_stats() -> Any:
        try:
            return await service.ask_stats()
        except StatsUnavailable as exc:
            return _problem(503, f"statistics unavailable: {exc}", **{"Retry-After": "2"})

    @app.get(
        "/api/sessions/{session_id}",
        response_model=SessionDetail,
        responses={
            404: {"model": Problem, "description": "No live session with that id"},
            422: {"model": Problem, "description": "An invalid path"},
            503: {"model": Problem, "description": "Sessions still loading"},
        },
        summary="One live session",
    )
    async def get_session(session_id: str) -> Any:
        sessions = store()
        if sessions is None:
            return _problem(503, "sessions are still loading", **{"Retry-After": "1"})
        record = sessions.get(session_id)
        if record is None or record.edge_id is None:
            return _problem(404, f"no live session {session_id[:80]!r}")
        return SessionDetail(**record.info().model_dump(), edge_id=record.edge_id)

    @app.post(
        "/api/broadcast",
        status_code=202,
        response_model=Accepted,
        openapi_extra={"requestBody": _BROADCAST_BODY},
        responses={
            400: {"model": Problem, "description": "Not JSON"},
            401: {"model": Problem, "description": "Missing or wrong bearer token"},
            403: {"model": Problem, "description": "Broadcast disabled (no token configured)"},
            413: {"model": Problem, "description": "Body over the limit"},
            422: {"model": Problem, "description": "Wrong fields, group or message type"},
            503: {"model": Problem, "description": "NATS unavailable"},
        },
        summary="Send a message to every client of a group (`all`: every client)",
    )
    async def broadcast(request: Request) -> Any:
        token = settings.broadcast_token.get_secret_value() if settings.broadcast_token else None
        refused = check_token(
            request.headers.get("authorization"), token=token, dev_mode=settings.dev_mode
        )
        if refused is None:
            body = await _read_limited(request, settings.broadcast_max_bytes)
            parsed = (
                parse_broadcast(body, max_bytes=settings.broadcast_max_bytes)
                if body is not None
                else BroadcastRefused(
                    413, f"body is larger than {settings.broadcast_max_bytes} bytes"
                )
            )
        else:
            parsed = refused
        if isinstance(parsed, BroadcastRefused):
            BROADCASTS.labels("refused").inc()
            headers = {"WWW-Authenticate": "Bearer"} if parsed.status == 401 else {}
            return _problem(parsed.status, parsed.reason, **headers)
        try:
            subject = await service.broadcast(parsed)
        except Exception as exc:
            BROADCASTS.labels("unavailable").inc()
            return _problem(503, f"broadcast not sent: {exc or type(exc).__name__}")
        BROADCASTS.labels("published").inc()
        return Accepted(group=parsed.group, subject=subject)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> Response:
        ok = service.ready()
        return JSONResponse(
            {"status": "ready" if ok else "not_ready"}, status_code=200 if ok else 503
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(_Timed)
    return app


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it exceeds ``limit`` (never buffers more)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class _Timed:
    """ASGI wrapper recording each request's latency by route template (bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            REQUEST_SECONDS.labels(scope.get("method", "GET"), path, str(status)).observe(
                time.perf_counter() - started
            )
