"""The HTTP request on a new connection: static files and probes, or the WebSocket upgrade.

The request is websockets' ``Request`` or, for the common upgrade read by the edge itself,
an :class:`~pricewire_edge.upgrade.UpgradeRequest`: both are read here through the same
:class:`~pricewire_edge.upgrade.HandshakeRequest` and answered by
:meth:`.connection.Connection.accept`, so every check below applies to both. An upgrade is
refused while the edge drains (503), with a second ``Host``, ``Origin`` or ``User-Agent``
header (400), or from a browser origin not allowed (403);
past the connection limits the client is told after its upgrade, with the close code a
browser can see. An accepted upgrade opens a session (:meth:`.sessions.Sessions.open`), asks
for the client's first stats, and checks a token offered in the handshake (subprotocol or
query), holding the client's first messages until it is verified.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

from . import metrics as m
from .auth import AuthError, handshake_token, offered_subprotocols
from .connection import Connection
from .handlers import ClientHandlers
from .http_routes import StaticFiles, http_response
from .limits import ConnectionLimiter
from .protocol import classify_client
from .sessions import Sessions
from .settings import EdgeSettings
from .stats_requests import StatsRequests
from .tasks import spawn
from .upgrade import HandshakeRequest, UpgradeRequest

__all__ = ["Handshakes"]

#: Headers the handshake reads one value of: sent twice, the upgrade is refused (400).
_SINGLE = ("Host", "Origin", "User-Agent")


class Handshakes:
    """Answers each connection's HTTP request (``on_request``)."""

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        static: StaticFiles,
        conn_limiter: ConnectionLimiter,
        sessions: Sessions,
        stats: StatsRequests,
        handlers: ClientHandlers,
        ready: Callable[[], bool],
        draining: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.static = static
        self.conn_limiter = conn_limiter
        self.sessions = sessions
        self.stats = stats
        self.handlers = handlers
        self.ready = ready
        self.draining = draining

    def on_request(self, conn: Connection, request: HandshakeRequest) -> None:
        path, _, query = request.path.partition("?")
        if path != self.settings.ws_path:
            conn.ws.send_response(http_response(path, self.static, self.ready))
            return
        refused = self._refuse_handshake(request)
        if refused is not None:
            status, reason, text = refused
            conn.ws.send_response(conn.ws.reject(status, text + "\n"))
            m.HANDSHAKES_REFUSED.labels(reason).inc()
            return
        if not conn.accept(request):  # the 101, then the welcome: one write
            m.HANDSHAKES_REFUSED.labels("bad_handshake").inc()
            return
        # Counted since connection_made under the peer (or in the total only, for a trusted
        # proxy): now under the client's address.
        ip = self.settings.limits.client_ip(conn.client_ip, request.headers)
        refusal = conn.refusal
        if refusal is None and conn.counted:
            refusal = self.conn_limiter.rekey(conn.ip_key, ip)
        if refusal is not None:
            m.HANDSHAKES_REFUSED.labels(refusal.reason).inc()
            conn.close(refusal.close_code, refusal.message)
            return
        conn.ip_key = ip
        override = parse_qs(query).get("client_type", [None])[0] if query else None
        self.sessions.open(conn, classify_client(request.headers.get("User-Agent"), override))
        self.stats.want_initial_stats(conn)
        try:
            token = handshake_token(
                query=query,
                subprotocols=offered_subprotocols(
                    request.headers.get_all("Sec-WebSocket-Protocol")
                ),
                allow_query=self.settings.auth.query_token,
            )
        except AuthError as err:
            self.handlers.auth_failed(conn, err, close=True)
            return
        if token is not None and self.settings.auth.mode != "off":
            conn.inbox = []  # hold the client's first messages until the token is checked
            spawn(self.handlers.handshake_auth(conn, token))

    def _refuse_handshake(self, request: HandshakeRequest) -> tuple[int, str, str] | None:
        if self.draining():
            return 503, "draining", "the edge is draining; reconnect to another one"
        headers = request.headers
        # (the edge's own parser hands a request with any of them twice to websockets)
        if not isinstance(request, UpgradeRequest):
            for name in _SINGLE:
                if len(headers.get_all(name)) > 1:  # which one counts would be a guess
                    return 400, "bad_handshake", f"more than one {name} header"
        # get_all: most clients send no Origin, and Headers.get pays a KeyError for that
        origins = headers.get_all("Origin")
        origin = origins[0] if origins else None
        if not self.settings.limits.origin_allowed(origin, headers.get("Host")):
            return 403, "origin", "origin not allowed"
        return None
