"""Replies every client gets, built once per second instead of once per client.

``welcome`` and ``subscribed`` (to a whole group) differ between clients only in a session id
and a token, or not at all, within one second (their ``timestamp`` has whole seconds). A
connect storm after a deploy sends thousands of each per second; building and validating the
contract model and dumping it each time was a tenth of the edge's set-up CPU (py-spy). Here the
model is built and dumped once per second, and a client's ``welcome`` is that template with its
session id and token put in (a UUID and URL-safe base64: JSON strings that need no escaping).
"""

from __future__ import annotations

import time

import orjson

from pricewire_common.encoding import dumps
from pricewire_contracts import ClientType, Group, Subscribed, Welcome

__all__ = ["Replies", "session_opened"]

_SID = "@@session-id@@"
_TOKEN = "@@resume-token@@"


class Replies:
    """Cached reply bytes, each valid for the second it was built in."""

    def __init__(self) -> None:
        self._second = -1
        self._welcome = b""
        self._subscribed: dict[Group, bytes] = {}

    def _tick(self) -> None:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._welcome = dumps(Welcome(session_id=_SID, resume_token=_TOKEN))
            self._subscribed.clear()

    def welcome(self, session_id: str, resume_token: str) -> bytes:
        self._tick()
        return self._welcome.replace(_SID.encode(), session_id.encode(), 1).replace(
            _TOKEN.encode(), resume_token.encode(), 1
        )

    def subscribed(self, group: Group, symbols: list[str] | None) -> bytes:
        if symbols is not None:
            return dumps(Subscribed(group=group, symbols=symbols))
        self._tick()
        reply = self._subscribed.get(group)
        if reply is None:
            reply = self._subscribed[group] = dumps(Subscribed(group=group))
        return reply


def session_opened(
    *,
    session_id: str,
    edge_id: str,
    client_type: ClientType,
    connected_at: str,
    resumed: bool,
    user: str | None,
    boot_id: str,
    event_seq: int,
) -> bytes:
    """``dumps(SessionOpened(...))`` without building and validating the model (one per
    session; tests/test_replies.py holds the two to the same bytes)."""
    event: dict[str, object] = {
        "event": "opened",
        "session_id": session_id,
        "edge_id": edge_id,
        "client_type": client_type.value,
        "connected_at": connected_at,
        "resumed": resumed,
    }
    if user is not None:
        event["user"] = user
    event["boot_id"] = boot_id
    event["event_seq"] = event_seq
    return orjson.dumps(event)
