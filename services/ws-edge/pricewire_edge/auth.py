"""Token authentication and group permissions at the edge.

The decisions are pure: :class:`TokenVerifier` turns a JWT into a :class:`Principal` or raises,
:class:`AuthSession` decides, per connection, what a client may subscribe to and when it must be
closed, :func:`handshake_token` finds a token in the upgrade request. The only I/O is the JWKS
fetch in :class:`JwksAuthenticator`, a thin async class around the pure verifier;
:func:`create_authenticator` picks the right one for the configuration.

Exceptions raised here form this tree. ``str()`` of any :exc:`AuthError` is a fixed sentence fit
for an ``error`` reply and a log line: no exception built here ever holds the token, a piece of
it, or a PyJWT exception as its cause or context.

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

Algorithm confusion is impossible by construction: the algorithm comes from the configuration,
never from the token header. A token whose header names another algorithm (``none``, or HS256
against an RSA public key) is refused before any key is touched, and the key is loaded for that
one algorithm family (an HMAC secret is never a PEM public key and vice versa).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol
from urllib.parse import parse_qsl

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from jwt.types import Options
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator

from pricewire_contracts import DATA_GROUPS, CloseCode, Group
from pricewire_contracts.server import ErrorCode

if TYPE_CHECKING:  # the pure part never needs httpx; only the JWKS fetcher does
    import httpx

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

log = logging.getLogger("pricewire.edge.auth")

#: Longest token accepted anywhere (the ``auth`` message has the same cap).
MAX_TOKEN_CHARS = 8192

#: The subprotocol the edge speaks and echoes back when the client offers it.
EDGE_SUBPROTOCOL = "pricewire.v1"
#: A ``Sec-WebSocket-Protocol`` entry ``bearer.<JWT>`` carries a token (never echoed back).
BEARER_SUBPROTOCOL_PREFIX = "bearer."

AuthMode = Literal["off", "optional", "required"]
JwtAlgorithm = Literal[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "ES256", "ES384"
]

_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 §3.2: at least the hash size
_RSA_MIN_BITS = 2048
_EC_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}
_JWS_COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# Largest NumericDate datetime can represent (9999-12-31T23:59:59Z).
_MAX_NUMERIC_DATE = 253_402_300_799


# -- errors ------------------------------------------------------------------------------------


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


# -- settings ----------------------------------------------------------------------------------


class AuthSettings(BaseModel):
    """How the edge authenticates clients. Embedded in the edge settings as ``auth``.

    Environment variables (with the edge's nested delimiter ``__``)::

        PRICEWIRE_AUTH__MODE=required
        PRICEWIRE_AUTH__ALGORITHM=RS256
        PRICEWIRE_AUTH__JWKS_URL=https://idp.example.com/.well-known/jwks.json
        PRICEWIRE_AUTH__AUDIENCE=pricewire
        PRICEWIRE_AUTH__ISSUER=https://idp.example.com/

    Exactly one key source fits the algorithm: ``secret`` or ``secret_file`` for HS*;
    ``public_key``, ``public_key_file`` or ``jwks_url`` for RS*/PS*/ES*.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: AuthMode = Field(
        default="off",
        description=(
            "off: no authentication, an auth message gets error 'unauthorized'; "
            "optional: anonymous clients get every group, authenticated ones their claim's "
            "groups; required: subscribing before auth gets error 'auth_required' and a client "
            "not authenticated within auth_timeout_s is closed with 4001"
        ),
    )
    algorithm: JwtAlgorithm = Field(
        default="HS256",
        description="The only JWS algorithm accepted; the token header never chooses it",
    )
    secret: SecretStr | None = Field(
        default=None,
        description="HS*: the shared secret (at least 32/48/64 bytes for HS256/384/512)",
    )
    secret_file: Path | None = Field(
        default=None, description="HS*: a file holding the secret (a mounted Kubernetes secret)"
    )
    public_key: str | None = Field(
        default=None, repr=False, description="RS*/PS*/ES*: the PEM public key, inline"
    )
    public_key_file: Path | None = Field(
        default=None, description="RS*/PS*/ES*: a file holding the PEM public key"
    )
    jwks_url: HttpUrl | None = Field(
        default=None, description="RS*/PS*/ES*: the identity provider's JWKS document"
    )
    audience: str | None = Field(
        default=None,
        description=(
            "Required value in the token's aud; when unset, a token carrying any aud is refused "
            "(RFC 7519 §4.1.3)"
        ),
    )
    issuer: str | None = Field(default=None, description="Required value of the token's iss")
    leeway_s: float = Field(
        default=10.0, ge=0, le=300, description="Clock skew tolerated on exp and nbf"
    )
    require_exp: bool = Field(default=True, description="Refuse tokens without an exp claim")
    groups_claim: str = Field(
        default="groups",
        min_length=1,
        description=(
            "Claim listing the groups the token allows (a list, or a space-separated string; "
            "dots walk nested objects, e.g. 'pricewire.groups'). Absent: every group; 'all' "
            "in it: every group; unknown names are ignored"
        ),
    )
    auth_timeout_s: float = Field(
        default=10.0, gt=0, description="required mode: time to authenticate after connecting"
    )
    expiry_grace_s: float = Field(
        default=30.0,
        ge=0,
        description=(
            "How long after a connected client's token expires it may still send a new one "
            "before being closed with 4010"
        ),
    )
    query_token: bool = Field(
        default=True,
        description=(
            "Accept ?token= / ?access_token= at the handshake (URLs end up in proxy logs; "
            "prefer the subprotocol or the auth message)"
        ),
    )
    jwks_cache_ttl_s: float = Field(
        default=300.0, gt=0, description="Refetch the JWKS when the cached copy is older"
    )
    jwks_min_refresh_interval_s: float = Field(
        default=30.0,
        ge=0,
        description="At most one fetch per interval, whatever unknown kids clients send",
    )
    jwks_timeout_s: float = Field(default=5.0, gt=0, description="Timeout of one JWKS fetch")

    @model_validator(mode="after")
    def _one_key_source(self) -> AuthSettings:
        if self.mode == "off":
            return self
        symmetric = (self.secret, self.secret_file)
        asymmetric = (self.public_key, self.public_key_file, self.jwks_url)
        given_sym = sum(v is not None for v in symmetric)
        given_asym = sum(v is not None for v in asymmetric)
        if self.algorithm.startswith("HS"):
            if given_sym != 1 or given_asym:
                raise ValueError(f"{self.algorithm} needs exactly one of secret, secret_file")
        elif given_asym != 1 or given_sym:
            raise ValueError(
                f"{self.algorithm} needs exactly one of public_key, public_key_file, jwks_url"
            )
        return self


# -- principal and verifier ---------------------------------------------------------------------

_EVERY_GROUP: frozenset[Group] = frozenset(Group)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is connected and which groups they may receive.

    ``groups`` holds :attr:`Group.ALL` only when every data group is allowed.
    """

    subject: str | None
    groups: frozenset[Group]
    expires_at: datetime | None = None
    anonymous: bool = False

    @classmethod
    def anonymous_principal(cls) -> Principal:
        """An unauthenticated client in ``optional`` mode (or with auth ``off``): every group."""
        return cls(subject=None, groups=_EVERY_GROUP, anonymous=True)

    def allows(self, group: Group) -> bool:
        return group in self.groups

    def grant(self, group: Group) -> frozenset[Group]:
        """The data groups a subscription to ``group`` delivers: ``all`` is every allowed one."""
        if group is Group.ALL:
            return self.groups.intersection(DATA_GROUPS)
        return frozenset({group}) & self.groups


def _groups_from_claim(value: object, claim: str) -> frozenset[Group]:
    if value is None:
        return _EVERY_GROUP
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
        return _EVERY_GROUP
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


def _algorithm_family(algorithm: str) -> Literal["oct", "RSA", "EC"]:
    if algorithm.startswith("HS"):
        return "oct"
    if algorithm.startswith(("RS", "PS")):
        return "RSA"
    return "EC"


def _check_public_key(key: object, algorithm: str) -> Any:
    family = _algorithm_family(algorithm)
    if family == "RSA":
        if not isinstance(key, rsa.RSAPublicKey):
            raise AuthConfigError(f"{algorithm} needs an RSA public key")
        if key.key_size < _RSA_MIN_BITS:
            raise AuthConfigError(f"RSA keys shorter than {_RSA_MIN_BITS} bits are refused")
        return key
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
        key.curve, _EC_CURVES[algorithm]
    ):
        raise AuthConfigError(f"{algorithm} needs an EC public key on {_EC_CURVES[algorithm].name}")
    return key


def load_static_key(settings: AuthSettings) -> Any:
    """The verification key of a ``secret`` / ``public_key`` configuration (not JWKS)."""
    algorithm = settings.algorithm
    if algorithm.startswith("HS"):
        if settings.secret is not None:
            secret = settings.secret.get_secret_value().encode()
        elif settings.secret_file is not None:
            try:
                secret = settings.secret_file.read_bytes().strip()
            except OSError as exc:
                raise AuthConfigError(f"cannot read secret_file: {exc.strerror}") from None
        else:
            raise AuthConfigError(f"{algorithm} needs secret or secret_file")
        if len(secret) < _HMAC_MIN_BYTES[algorithm]:
            raise AuthConfigError(
                f"{algorithm} secrets must be at least {_HMAC_MIN_BYTES[algorithm]} bytes"
            )
        if secret.lstrip().startswith(b"-----BEGIN"):
            raise AuthConfigError("an HMAC secret must not be a PEM key")
        return secret
    if settings.public_key is not None:
        pem = settings.public_key.encode()
    elif settings.public_key_file is not None:
        try:
            pem = settings.public_key_file.read_bytes()
        except OSError as exc:
            raise AuthConfigError(f"cannot read public_key_file: {exc.strerror}") from None
    else:
        raise AuthConfigError(f"{algorithm} needs public_key or public_key_file")
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise AuthConfigError("public_key is not a PEM public key") from None
    return _check_public_key(key, algorithm)


#: A parsed JWKS: verification keys by ``kid`` (``None``: a key without one).
JwkSet = Mapping[str | None, Any]


def parse_jwks(document: bytes | Mapping[str, Any], algorithm: str) -> dict[str | None, Any]:
    """The keys of a JWKS that can verify ``algorithm``; every other key is skipped.

    Skipped: encryption keys (``use`` other than ``sig``), keys of another type or curve, keys
    declaring another ``alg``, RSA keys under 2048 bits, anything PyJWT cannot load. Raises
    :exc:`ValueError` when the document is not a JWKS at all.
    """
    data = orjson.loads(document) if isinstance(document, bytes) else document
    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWKS document")
    family = _algorithm_family(algorithm)
    keys: dict[str | None, Any] = {}
    for entry in data["keys"]:
        if not isinstance(entry, Mapping) or entry.get("kty") != family or family == "oct":
            continue  # JWKS never carries a shared secret for us
        if entry.get("use", "sig") != "sig" or entry.get("alg", algorithm) != algorithm:
            continue
        kid = entry.get("kid")
        if kid is not None and not isinstance(kid, str):
            continue
        try:
            key = _check_public_key(jwt.PyJWK(dict(entry), algorithm=algorithm).key, algorithm)
        except (jwt.PyJWTError, AuthConfigError, ValueError, TypeError, KeyError):
            continue
        keys[kid] = key
    return keys


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


# -- per-connection state -------------------------------------------------------------------------


@dataclass(slots=True)
class AuthSession:
    """One connection's authentication state. Pure: every method takes the time as Unix seconds.

    The edge calls :meth:`check_subscribe` before a ``subscribe`` (or a ``resume``, which
    replays groups), :meth:`authenticate` after a successful ``verify``, and :meth:`due`
    periodically (or at :meth:`deadline`) to learn whether to close the connection and with
    which code.
    """

    settings: AuthSettings
    connected_at: float
    principal: Principal | None = None
    authenticated_at: float | None = field(default=None)

    @property
    def authenticated(self) -> bool:
        return self.principal is not None and not self.principal.anonymous

    @property
    def effective(self) -> Principal | None:
        """Whom the connection acts as now: ``None`` while auth is required and missing."""
        if self.principal is not None:
            return self.principal
        if self.settings.mode == "required":
            return None
        return Principal.anonymous_principal()

    def authenticate(self, principal: Principal, *, now: float) -> frozenset[Group]:
        """Adopt a verified principal; returns the data groups it no longer allows.

        Raises :exc:`SubjectChanged` if the connection already authenticated as someone else.
        """
        previous = self.effective
        if (
            self.authenticated
            and self.principal is not None
            and self.principal.subject != principal.subject
        ):
            raise SubjectChanged()
        self.principal = principal
        self.authenticated_at = now
        if previous is None:
            return frozenset()
        return previous.groups.intersection(DATA_GROUPS) - principal.groups

    def check_subscribe(self, group: Group) -> ErrorCode | None:
        """``None`` if the client may subscribe to ``group``, else the ``error`` reply's code."""
        who = self.effective
        if who is None:
            return "auth_required"
        if not who.grant(group):
            return "forbidden"
        return None

    def grant(self, group: Group) -> frozenset[Group]:
        """The data groups a subscription to ``group`` delivers now (empty: none)."""
        who = self.effective
        return frozenset() if who is None else who.grant(group)

    def deadline(self) -> tuple[float, CloseCode] | None:
        """When the connection must be closed unless the client (re-)authenticates, and how."""
        if self.settings.mode == "off":
            return None
        if self.principal is None or self.principal.anonymous:
            if self.settings.mode == "required":
                return self.connected_at + self.settings.auth_timeout_s, CloseCode.AUTH_TIMEOUT
            return None
        if self.principal.expires_at is None:
            return None
        expiry = self.principal.expires_at.timestamp() + self.settings.expiry_grace_s
        return expiry, CloseCode.TOKEN_EXPIRED

    def due(self, now: float) -> CloseCode | None:
        """The close code if the deadline has passed at ``now``, else ``None``."""
        deadline = self.deadline()
        if deadline is None or now < deadline[0]:
            return None
        return deadline[1]


# -- handshake -------------------------------------------------------------------------------------


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


# -- authenticators (the async face the edge calls) -------------------------------------------------


class Authenticator(Protocol):
    """What the edge calls: ``await verify(token)``; one per process."""

    settings: AuthSettings

    async def start(self) -> None: ...

    async def verify(self, token: str) -> Principal: ...

    async def aclose(self) -> None: ...


class DisabledAuthenticator:
    """Mode ``off``: every token is answered with :exc:`AuthNotConfigured`."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings

    async def start(self) -> None:
        return None

    async def verify(self, token: str) -> Principal:
        raise AuthNotConfigured()

    async def aclose(self) -> None:
        return None


class StaticKeyAuthenticator:
    """A secret or a PEM public key: verification never waits."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.verifier = TokenVerifier(settings)

    async def start(self) -> None:
        return None

    async def verify(self, token: str) -> Principal:
        return self.verifier.verify(token)

    async def aclose(self) -> None:
        return None


#: The largest JWKS document accepted (real ones are a few KiB).
MAX_JWKS_BYTES = 1024 * 1024


class JwksAuthenticator:
    """Keys from a JWKS URL, fetched with httpx and cached.

    The cache is refetched when older than ``jwks_cache_ttl_s`` and when a token names an
    unknown ``kid`` (key rotation), but never more than once per
    ``jwks_min_refresh_interval_s``, so clients sending made-up ``kid`` values cannot turn the
    edge into a load generator against the identity provider. Concurrent refreshes are
    coalesced; a failed fetch keeps the previous keys.
    """

    def __init__(
        self,
        settings: AuthSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.jwks_url is None:
            raise AuthConfigError("JwksAuthenticator needs jwks_url")
        self.settings = settings
        self.url = str(settings.jwks_url)
        self.verifier = TokenVerifier(settings)
        self._client = client
        self._own_client = client is None
        self._clock = clock
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._generation = 0  # completed fetch attempts; tells a waiting task one just ran
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def start(self) -> None:
        """Warm the cache; a failure is logged and retried on the first token."""
        await self._refresh(force=True)

    async def verify(self, token: str) -> Principal:
        if self._stale():
            await self._refresh(force=False)
        try:
            return self.verifier.verify(token)
        except UnknownKey:
            if not self.verifier.key_ids:
                raise KeysUnavailable() from None
            # A kid we do not know may be a key the provider just rotated in.
            if self.verifier.key_id(token) is None or not await self._refresh(force=False):
                raise
        return self.verifier.verify(token)

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _stale(self) -> bool:
        return (
            self._fetched_at is None
            or self._clock() - self._fetched_at >= self.settings.jwks_cache_ttl_s
        )

    async def _refresh(self, *, force: bool) -> bool:
        """Fetch the JWKS unless rate-limited; True if a fetch (this one or a concurrent one) ran."""
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                return True  # another task fetched while this one waited: use its result
            now = self._clock()
            if (
                not force
                and self._attempted_at is not None
                and now - self._attempted_at < self.settings.jwks_min_refresh_interval_s
            ):
                return False
            self._attempted_at = now
            self.fetches += 1
            try:
                keys = await self._fetch()
            finally:
                self._generation += 1
            if keys is None:
                return False
            self.verifier.replace_keys(keys)
            self._fetched_at = now
            return True

    async def _fetch(self) -> dict[str | None, Any] | None:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.settings.jwks_timeout_s, follow_redirects=False
            )
        try:
            async with self._client.stream(
                "GET", self.url, headers={"Accept": "application/json"}
            ) as response:
                if response.status_code != 200:
                    log.warning(
                        "jwks fetch refused",
                        extra={"url": self.url, "status": response.status_code},
                    )
                    return None
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        log.warning("jwks document too large", extra={"url": self.url})
                        return None
        except httpx.HTTPError as exc:
            log.warning("jwks fetch failed", extra={"url": self.url, "error": type(exc).__name__})
            return None
        try:
            keys = parse_jwks(bytes(body), self.verifier.algorithm)
        except (ValueError, orjson.JSONDecodeError):
            log.warning("jwks document invalid", extra={"url": self.url})
            return None
        if not keys:
            log.warning(
                "jwks has no usable key",
                extra={"url": self.url, "algorithm": self.verifier.algorithm},
            )
            return None
        log.info("jwks fetched", extra={"url": self.url, "keys": len(keys)})
        return keys


def create_authenticator(
    settings: AuthSettings, *, client: httpx.AsyncClient | None = None
) -> Authenticator:
    """The authenticator for a configuration; raises :exc:`AuthConfigError` if it cannot work."""
    if settings.mode == "off":
        return DisabledAuthenticator(settings)
    if settings.jwks_url is not None:
        return JwksAuthenticator(settings, client=client)
    return StaticKeyAuthenticator(settings)
