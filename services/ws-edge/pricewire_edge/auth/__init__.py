"""Token authentication and group permissions at the edge.

The decisions are pure: :class:`TokenVerifier` turns a JWT into a :class:`Principal` or raises,
:class:`AuthSession` decides, per connection, what a client may subscribe to and when it must be
closed, :func:`handshake_token` finds a token in the upgrade request. The only I/O is the JWKS
fetch in :class:`JwksAuthenticator`, a thin async class around the pure verifier;
:func:`create_authenticator` picks the right one for the configuration.

Modules, each named after what it owns (import from this package, not from them):

.. code-block:: text

    errors          the AuthError tree (every str() is safe to send and to log), AuthConfigError
    settings        AuthSettings (PRICEWIRE_AUTH__*), AuthMode, JwtAlgorithm
    principal       Principal: a subject and the groups it may receive
    keys            a configured secret / PEM key, and the usable keys of a JWKS document
    verifier        TokenVerifier: JWT -> Principal, pure; MAX_TOKEN_CHARS
    session         AuthSession: one connection's state, deadlines and close codes
    handshake       token and subprotocol of the upgrade request
    jwks            JwksAuthenticator: JWKS fetched with httpx, cached, rate-limited
    authenticators  the Authenticator protocol, the static and disabled ones, the factory

Each module imports only modules above it in this list, so the package has no import cycle,
and none of them imports the rest of the edge.
"""

from __future__ import annotations

from .authenticators import (
    Authenticator,
    DisabledAuthenticator,
    StaticKeyAuthenticator,
    create_authenticator,
)
from .errors import (
    AuthConfigError,
    AuthError,
    AuthNotConfigured,
    BadSignature,
    ExpiredToken,
    InvalidClaim,
    InvalidToken,
    KeysUnavailable,
    MalformedToken,
    NotYetValid,
    SubjectChanged,
    UnknownKey,
    UnsupportedAlgorithm,
    WrongAudience,
    WrongIssuer,
)
from .handshake import (
    BEARER_SUBPROTOCOL_PREFIX,
    EDGE_SUBPROTOCOL,
    handshake_token,
    offered_subprotocols,
    select_subprotocol,
)
from .jwks import JwksAuthenticator
from .keys import parse_jwks
from .principal import Principal
from .session import AuthSession
from .settings import AuthMode, AuthSettings, JwtAlgorithm
from .verifier import MAX_TOKEN_CHARS, TokenVerifier

__all__ = [
    "BEARER_SUBPROTOCOL_PREFIX",
    "EDGE_SUBPROTOCOL",
    "MAX_TOKEN_CHARS",
    "AuthConfigError",
    "AuthError",
    "AuthMode",
    "AuthNotConfigured",
    "AuthSession",
    "AuthSettings",
    "Authenticator",
    "BadSignature",
    "DisabledAuthenticator",
    "ExpiredToken",
    "InvalidClaim",
    "InvalidToken",
    "JwksAuthenticator",
    "JwtAlgorithm",
    "KeysUnavailable",
    "MalformedToken",
    "NotYetValid",
    "Principal",
    "StaticKeyAuthenticator",
    "SubjectChanged",
    "TokenVerifier",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "WrongAudience",
    "WrongIssuer",
    "create_authenticator",
    "handshake_token",
    "offered_subprotocols",
    "parse_jwks",
    "select_subprotocol",
]
