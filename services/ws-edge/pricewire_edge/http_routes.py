"""Plain HTTP on the edge's port: static files, /health, /ready, /metrics.

The WebSocket handshake and these routes share one port. Their requests are parsed by the
websockets library (only the common upgrade request to the WebSocket path is read by the
edge itself, :mod:`.upgrade`); every plain HTTP response closes its connection, which is fine
for health probes, metrics scrapes and a handful of static files. ``/api`` is not served here: the dev gateway
(``make run``) or the Ingress (Kubernetes) routes it to session-registry.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path

from websockets.datastructures import Headers
from websockets.http11 import Response

from pricewire_common.metrics import CONTENT_TYPE_LATEST, render_metrics

__all__ = ["StaticFiles", "http_response", "plain"]

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}


def plain(
    status: int, body: bytes, content_type: str = "application/json", **headers: str
) -> Response:
    h = Headers()
    h["Content-Type"] = content_type
    h["Content-Length"] = str(len(body))
    h["Connection"] = "close"
    h["Cache-Control"] = "no-cache"
    h["X-Content-Type-Options"] = "nosniff"
    for name, value in headers.items():
        h[name.replace("_", "-")] = value
    return Response(status, HTTPStatus(status).phrase, h, body)


class StaticFiles:
    """Files of one folder, read once at start (they are small and never change at run time)."""

    def __init__(self, root: Path) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        if root.is_dir():
            for path in root.rglob("*"):
                if path.is_file() and not path.name.startswith("."):
                    rel = path.relative_to(root).as_posix()
                    kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
                    self.files[rel] = (path.read_bytes(), kind or "application/octet-stream")

    def get(self, rel: str) -> Response | None:
        found = self.files.get(rel)
        if found is None:
            return None
        return plain(200, found[0], found[1])


def http_response(path: str, static: StaticFiles, ready: Callable[[], bool]) -> Response:
    """The response to a plain GET of ``path`` (query string already removed)."""
    if path == "/health":
        return plain(200, b'{"status":"ok"}')
    if path == "/ready":
        if ready():
            return plain(200, b'{"status":"ready"}')
        return plain(503, b'{"status":"not ready"}')
    if path == "/metrics":
        return plain(200, render_metrics(), CONTENT_TYPE_LATEST)
    if path in ("/", "/index.html"):
        found = static.get("index.html")
    elif path == "/test_websocket.html":
        found = static.get("test_websocket.html")
    elif path.startswith("/static/"):
        found = static.get(path.removeprefix("/static/"))
    else:
        found = None
    return found or plain(404, b'{"error":"not found"}')
