"""The authentication settings of the edge (``PRICEWIRE_AUTH__*``), validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator

__all__ = ["AuthMode", "AuthSettings", "JwtAlgorithm"]

AuthMode = Literal["off", "optional", "required"]
JwtAlgorithm = Literal[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "ES256", "ES384"
]


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
