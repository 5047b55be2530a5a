"""JWT verification: :class:`TokenVerifier` turns a token into a :class:`.Principal` or raises.

Pure: no network and, when given ``now``, no clock. Algorithm confusion is impossible by
construction: the algorithm comes from the configuration, never from the token header. A token
whose header names another algorithm (``none``, or HS256 against an RSA public key) is refused
before any key is touched. Every PyJWT failure becomes one of this package's
:exc:`.AuthError` subclasses, without any of PyJWT's text (it may quote the token).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jwt
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from jwt.types import Options

from pricewire_contracts import DATA_GROUPS, Group

from .errors import (
    AuthError,
    BadSignature,
    ExpiredToken,
    InvalidClaim,
    MalformedToken,
    NotYetValid,
    UnknownKey,
    UnsupportedAlgorithm,
    WrongAudience,
    WrongIssuer,
)
from .keys import JwkSet, load_static_key
from .principal import EVERY_GROUP, Principal
from .settings import AuthSettings

__all__ = ["MAX_TOKEN_CHARS", "TokenVerifier"]

#: Longest token accepted anywhere (the ``auth`` message has the same cap).
MAX_TOKEN_CHARS = 8192

_JWS_COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# Largest NumericDate datetime can represent (9999-12-31T23:59:59Z).
_MAX_NUMERIC_DATE = 253_402_300_799


def _groups_from_claim(value: object, claim: str) -> frozenset[Group]:
    if value is None:
        return EVERY_GROUP
    if isinstance(value, str):
        names: list[object] = list(value.split())
    elif isinstance(value, list):
        names = list(value)
    else:
        raise InvalidClaim(f"claim {claim!r} must be a list of group names")
    granted: set[Group] = set()
    for name in names:
        if not isinstance(name, str):
            raise InvalidClaim(f"claim {claim!r} must be a list of group names")
        try:
            granted.add(Group(name))
        except ValueError:
            continue  # a group this edge does not know (a newer issuer): grant nothing for it
    if Group.ALL in granted or granted.issuperset(DATA_GROUPS):
        return EVERY_GROUP
    return frozenset(granted)


def _claim_path(claims: Mapping[str, Any], path: str) -> object:
    node: object = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= _MAX_NUMERIC_DATE
    ):
        raise InvalidClaim(f"claim {name!r} must be a number of seconds since the epoch")
    return float(value)


def _translate(exc: Exception) -> AuthError:
    """A PyJWT failure as our own error, without any of its text (it may quote the token)."""
    if isinstance(exc, jwt.InvalidAudienceError):
        return WrongAudience()
    if isinstance(exc, jwt.InvalidIssuerError):
        return WrongIssuer()
    if isinstance(exc, jwt.MissingRequiredClaimError):
        claim = exc.claim if exc.claim in ("exp", "aud", "iss", "nbf", "sub") else "?"
        if claim == "aud":
            return WrongAudience("the token has no audience (aud)")
        if claim == "iss":
            return WrongIssuer("the token has no issuer (iss)")
        return InvalidClaim(f"the token has no {claim!r} claim")
    if isinstance(exc, jwt.InvalidSignatureError):
        return BadSignature()
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return UnsupportedAlgorithm()
    if isinstance(exc, jwt.ExpiredSignatureError):
        return ExpiredToken()
    if isinstance(exc, jwt.ImmatureSignatureError):
        return NotYetValid()
    if isinstance(exc, InvalidSubjectError | InvalidJTIError | jwt.InvalidIssuedAtError):
        return InvalidClaim()
    return MalformedToken()


class TokenVerifier:
    """Verifies a JWT against a fixed algorithm and key (or key set).

    No network and, when given ``now``, no clock (a ``*_file`` key is read once, here)::

        verifier = TokenVerifier(AuthSettings(mode="required", secret="s" * 32))
        principal = verifier.verify(token)  # or an AuthError subclass
        principal.grant(Group.ALL)          # the data groups "all" delivers to it

    With ``jwks_url`` the verifier starts with no keys; :class:`JwksAuthenticator` fills them
    in through :meth:`replace_keys`.
    """

    def __init__(self, settings: AuthSettings, *, keys: JwkSet | None = None) -> None:
        self.settings = settings
        self.algorithm: str = settings.algorithm
        self._static_key: Any = None if settings.jwks_url else load_static_key(settings)
        self._keys: dict[str | None, Any] = dict(keys or {})
        self._options: Options = {
            # exp and nbf are checked below against the caller's clock; iat is informational.
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "require": ["exp"] if settings.require_exp else [],
            "enforce_minimum_key_length": True,
        }

    @property
    def key_ids(self) -> frozenset[str | None]:
        return frozenset(self._keys)

    def replace_keys(self, keys: JwkSet) -> None:
        self._keys = dict(keys)

    def verify(self, token: str, *, now: float | None = None) -> Principal:
        """The principal a token stands for; raises an :exc:`AuthError` subclass otherwise.

        ``now`` is Unix time (``time.time()`` when omitted).
        """
        now = time.time() if now is None else now
        claims = self._claims(token)
        return self._principal(claims, now)

    def key_id(self, token: str) -> str | None:
        """The ``kid`` of a token's header (after the same checks :meth:`verify` makes)."""
        kid = self._header(token).get("kid")
        return kid if isinstance(kid, str) else None

    def _header(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise MalformedToken()
        if not _JWS_COMPACT.match(token):
            raise MalformedToken()
        error: AuthError | None = None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            error = _translate(exc)
        except (ValueError, TypeError, RecursionError, OverflowError):
            error = MalformedToken()
        if error is not None:
            # Raised outside the except block, so the PyJWT exception is not its context.
            raise error
        if header.get("alg") != self.algorithm:
            raise UnsupportedAlgorithm()
        return header

    def _key_for(self, header: Mapping[str, Any]) -> Any:
        if self._static_key is not None:
            return self._static_key
        kid = header.get("kid")
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if not isinstance(kid, str) or kid not in self._keys:
            raise UnknownKey()
        return self._keys[kid]

    def _claims(self, token: str) -> dict[str, Any]:
        key = self._key_for(self._header(token))
        error: AuthError | None = None
        claims: Any = None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            error = _translate(exc)
        except (ValueError, TypeError, RecursionError, OverflowError):
            error = MalformedToken()
        if error is not None:
            raise error
        if not isinstance(claims, dict):
            raise MalformedToken()
        return claims

    def _principal(self, claims: Mapping[str, Any], now: float) -> Principal:
        leeway = self.settings.leeway_s
        exp = _numeric_date(claims, "exp")
        nbf = _numeric_date(claims, "nbf")
        _numeric_date(claims, "iat")
        if exp is not None and exp <= now - leeway:
            raise ExpiredToken()
        if nbf is not None and nbf > now + leeway:
            raise NotYetValid()
        subject = claims.get("sub")
        if subject is not None and not isinstance(subject, str):
            raise InvalidClaim("claim 'sub' must be a string")
        claim = self.settings.groups_claim
        return Principal(
            subject=subject,
            groups=_groups_from_claim(_claim_path(claims, claim), claim),
            expires_at=None if exp is None else datetime.fromtimestamp(exp, UTC),
        )
