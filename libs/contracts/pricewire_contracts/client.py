"""Messages a WebSocket client sends to ws-edge (the guide's section "Client messages").

Every one of them gets a reply: ``subscribe`` -> ``subscribed``, ``unsubscribe`` ->
``unsubscribed``, ``get_stats`` -> ``stats``, ``ping`` -> ``pong``, ``auth`` -> ``auth_ok``,
``resume`` -> ``resumed`` or ``resume_failed``; anything rejected -> ``error``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from .common import Contract, Group, Symbol

__all__ = [
    "AuthRequest",
    "ClientMessage",
    "GetStatsRequest",
    "PingRequest",
    "ResumeRequest",
    "SubscribeRequest",
    "UnsubscribeRequest",
    "client_message_adapter",
]


class SubscribeRequest(Contract):
    """``{"type": "subscribe", "group": "prices", "symbols": ["BTC"]}``.

    ``symbols`` (prices only) narrows the group to those symbols; ``max_rate_hz`` caps how
    often this client is sent an update for one symbol (newer values replace older ones).
    """

    type: Literal["subscribe"]
    group: Group
    symbols: list[Symbol] | None = Field(default=None, max_length=200)
    max_rate_hz: float | None = Field(default=None, gt=0, le=1000)


class UnsubscribeRequest(Contract):
    type: Literal["unsubscribe"]
    group: Group


class GetStatsRequest(Contract):
    type: Literal["get_stats"]


class PingRequest(Contract):
    type: Literal["ping"]


class AuthRequest(Contract):
    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=8192, repr=False)


class ResumeRequest(Contract):
    """Sent as the first message after a reconnect: replay every group message after ``last_seq``.

    ``resume_token`` is the secret the session's ``welcome`` (or last ``resumed``) carried; a
    session id alone is public and proves nothing.
    """

    type: Literal["resume"]
    session_id: str = Field(min_length=1, max_length=64)
    resume_token: str | None = Field(default=None, max_length=128)
    last_seq: dict[Group, int] = Field(default_factory=dict)


ClientMessage = Annotated[
    SubscribeRequest
    | UnsubscribeRequest
    | GetStatsRequest
    | PingRequest
    | AuthRequest
    | ResumeRequest,
    Field(discriminator="type"),
]

client_message_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)

#: The ``type`` values a client may send.
CLIENT_MESSAGE_TYPES: frozenset[str] = frozenset(
    {"subscribe", "unsubscribe", "get_stats", "ping", "auth", "resume"}
)
__all__ += ["CLIENT_MESSAGE_TYPES"]
