"""What the WebSocket upgrade request carries: the offered subprotocols and the token.

:func:`handshake_token` finds a token in a ``bearer.<JWT>`` subprotocol entry or the query
string; :func:`select_subprotocol` picks the one to echo back (never the token).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl

from .errors import MalformedToken

__all__ = [
    "BEARER_SUBPROTOCOL_PREFIX",
    "EDGE_SUBPROTOCOL",
    "handshake_token",
    "offered_subprotocols",
    "select_subprotocol",
]

#: The subprotocol the edge speaks and echoes back when the client offers it.
EDGE_SUBPROTOCOL = "pricewire.v1"
#: A ``Sec-WebSocket-Protocol`` entry ``bearer.<JWT>`` carries a token (never echoed back).
BEARER_SUBPROTOCOL_PREFIX = "bearer."


def offered_subprotocols(header_values: Iterable[str]) -> list[str]:
    """Every entry of the ``Sec-WebSocket-Protocol`` request headers, in order."""
    return [item.strip() for value in header_values for item in value.split(",") if item.strip()]


def select_subprotocol(offered: Sequence[str]) -> str | None:
    """The subprotocol to echo back: :data:`EDGE_SUBPROTOCOL` if offered, else none.

    A ``bearer.<token>`` entry is never selected, so the token never travels back in the
    response headers. Browsers fail a handshake whose response selects no subprotocol when
    they offered some, so a browser sending a token this way offers ``pricewire.v1`` too.
    """
    return EDGE_SUBPROTOCOL if EDGE_SUBPROTOCOL in offered else None


def handshake_token(
    *, query: str = "", subprotocols: Sequence[str] = (), allow_query: bool = True
) -> str | None:
    """The token a client sent with the WebSocket upgrade request, if any.

    ``query`` is the raw query string (after ``?``); ``subprotocols`` the entries of
    :func:`offered_subprotocols`. A token comes from a ``bearer.<JWT>`` subprotocol entry, or
    from the ``access_token`` (RFC 6750 §2.3) or ``token`` query parameter when
    ``allow_query``. Raises :exc:`MalformedToken` for an empty token or for several different
    ones (no precedence rule an attacker could play with).
    """
    found: set[str] = set()
    for entry in subprotocols:
        if entry.startswith(BEARER_SUBPROTOCOL_PREFIX):
            found.add(entry[len(BEARER_SUBPROTOCOL_PREFIX) :])
    if allow_query and query:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=64)
        except ValueError:
            raise MalformedToken("the request has too many query parameters") from None
        found.update(value for name, value in pairs if name in ("token", "access_token"))
    if not found:
        return None
    if len(found) > 1:
        raise MalformedToken("the request carries several different tokens")
    token = found.pop()
    if not token:
        raise MalformedToken("the request carries an empty token")
    return token
