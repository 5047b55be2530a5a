"""Verification keys: a configured secret or PEM public key, and the usable keys of a JWKS.

Each key is loaded for the one algorithm family of the configuration (an HMAC secret is never a
PEM public key and vice versa); weak keys are refused. No network: the JWKS *fetch* lives in
:mod:`.jwks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from .errors import AuthConfigError
from .settings import AuthSettings

__all__ = ["JwkSet", "load_static_key", "parse_jwks"]

_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 §3.2: at least the hash size
_RSA_MIN_BITS = 2048
_EC_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}


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
