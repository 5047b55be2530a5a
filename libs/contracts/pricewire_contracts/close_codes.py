"""WebSocket close codes ws-edge uses, and what a client should do on each."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CloseCode"]


class CloseCode(IntEnum):
    NORMAL = 1000  #: the client or server closed normally
    GOING_AWAY = 1001  #: the edge is shutting down for good; reconnect elsewhere
    POLICY_VIOLATION = 1008  #: origin refused, or too many connections from this address
    MESSAGE_TOO_BIG = 1009  #: a client frame over the maximum message size
    INTERNAL_ERROR = 1011  #: a bug; reconnect with backoff
    SERVICE_RESTART = 1012  #: graceful drain (deploy, SIGTERM); reconnect with jitter and resume
    TRY_AGAIN_LATER = 1013  #: the edge is at its global connection cap
    AUTH_TIMEOUT = 4001  #: auth required and none arrived in time
    AUTH_FAILED = 4003  #: the token was refused at the handshake
    RATE_LIMITED = 4008  #: kept sending past the message-rate limit after being warned
    SLOW_CONSUMER = 4009  #: could not keep up even with conflation, past the stuck limit
    TOKEN_EXPIRED = 4010  #: the token expired and no new one was sent in time
    IDLE_TIMEOUT = 4011  #: no message and no pong within the idle timeout
