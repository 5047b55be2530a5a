"""The exceptions of token authentication.

``str()`` of any :exc:`AuthError` is a fixed sentence fit for an ``error`` reply and a log line:
no exception built in this package ever holds the token, a piece of it, or a PyJWT exception as
its cause or context.

.. code-block:: text

    AuthError                     authentication refused; ``code`` is the reply's error code
    ├── AuthNotConfigured         mode ``off``: this server takes no tokens
    ├── KeysUnavailable           the JWKS could not be fetched; try again later
    ├── SubjectChanged            a re-authentication for another subject
    └── InvalidToken              the token itself is refused
        ├── MalformedToken        not a signed compact JWT, bad JSON, too long, ambiguous
        ├── UnsupportedAlgorithm  header ``alg`` is not the configured one (``none`` included)
        ├── UnknownKey            the ``kid`` is not in the key set
        ├── BadSignature          the signature does not verify with the configured key
        ├── ExpiredToken          ``exp`` is past (beyond the leeway)
        ├── NotYetValid           ``nbf`` is in the future (beyond the leeway)
        ├── WrongAudience         ``aud`` does not name this server (or is missing)
        ├── WrongIssuer           ``iss`` is not the configured issuer (or is missing)
        └── InvalidClaim          a claim is missing or has the wrong type

    AuthConfigError (ValueError)  the configuration cannot work; raised at start-up only
"""

from __future__ import annotations

from typing import ClassVar

from pricewire_contracts.server import ErrorCode

__all__ = [
    "AuthConfigError",
    "AuthError",
    "AuthNotConfigured",
    "BadSignature",
    "ExpiredToken",
    "InvalidClaim",
    "InvalidToken",
    "KeysUnavailable",
    "MalformedToken",
    "NotYetValid",
    "SubjectChanged",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "WrongAudience",
    "WrongIssuer",
]


class AuthError(Exception):
    """Authentication refused. ``str()`` is safe to send to the client and to log."""

    #: The ``code`` of the ``error`` reply.
    code: ClassVar[ErrorCode] = "unauthorized"
    #: A short, fixed label for metrics and logs (a bounded set of values).
    reason: ClassVar[str] = "auth_error"
    default_message: ClassVar[str] = "authentication failed"

    def __init__(self, message: str | None = None) -> None:
        # Messages come from this module only, as fixed sentences or configuration values;
        # never from the token or a third-party exception (which may quote the token).
        super().__init__(message or self.default_message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class AuthNotConfigured(AuthError):
    reason = "not_configured"
    default_message = "authentication is not configured on this server"


class KeysUnavailable(AuthError):
    reason = "keys_unavailable"
    default_message = "the token signing keys are unavailable; try again later"


class SubjectChanged(AuthError):
    code = "forbidden"
    reason = "subject_changed"
    default_message = "a connection cannot re-authenticate as another subject"


class InvalidToken(AuthError):
    reason = "invalid_token"
    default_message = "invalid token"


class MalformedToken(InvalidToken):
    reason = "malformed"
    default_message = "the token is not a well-formed signed JWT"


class UnsupportedAlgorithm(InvalidToken):
    reason = "unsupported_algorithm"
    default_message = "the token's algorithm is not accepted by this server"


class UnknownKey(InvalidToken):
    reason = "unknown_key"
    default_message = "the token was signed with an unknown key"


class BadSignature(InvalidToken):
    reason = "bad_signature"
    default_message = "the token's signature is invalid"


class ExpiredToken(InvalidToken):
    reason = "expired"
    default_message = "the token has expired"


class NotYetValid(InvalidToken):
    reason = "not_yet_valid"
    default_message = "the token is not valid yet"


class WrongAudience(InvalidToken):
    reason = "wrong_audience"
    default_message = "the token is not meant for this server (audience)"


class WrongIssuer(InvalidToken):
    reason = "wrong_issuer"
    default_message = "the token comes from an issuer this server does not trust"


class InvalidClaim(InvalidToken):
    reason = "invalid_claim"
    default_message = "the token has a missing or invalid claim"


class AuthConfigError(ValueError):
    """The authentication configuration cannot work (raised when the verifier is built)."""
