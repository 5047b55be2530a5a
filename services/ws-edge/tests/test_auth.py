"""Authentication core: token verification, error hygiene, per-connection state, JWKS."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import http.server
import json
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pricewire_contracts import DATA_GROUPS, CloseCode, Group
from pricewire_edge.auth import (
    EDGE_SUBPROTOCOL,
    MAX_TOKEN_CHARS,
    AuthConfigError,
    AuthError,
    AuthNotConfigured,
    AuthSession,
    AuthSettings,
    BadSignature,
    DisabledAuthenticator,
    ExpiredToken,
    InvalidClaim,
    InvalidToken,
    JwksAuthenticator,
    KeysUnavailable,
    MalformedToken,
    NotYetValid,
    Principal,
    StaticKeyAuthenticator,
    SubjectChanged,
    TokenVerifier,
    UnknownKey,
    UnsupportedAlgorithm,
    WrongAudience,
    WrongIssuer,
    create_authenticator,
    handshake_token,
    offered_subprotocols,
    parse_jwks,
    select_subprotocol,
)

NOW = 1_800_000_000.0
SECRET = "correct-horse-battery-staple-0123456789"  # 39 bytes: long enough for HS256
ALL_GROUPS = frozenset(Group)


# -- keys and tokens ---------------------------------------------------------------------------------


@functools.cache
def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_key(curve: str = "P-256") -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1() if curve == "P-256" else ec.SECP384R1())


def pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """A token signed with HMAC-SHA256 whatever its header says (PyJWT refuses to build some)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "user-1",
        "aud": "pricewire",
        "iss": "https://idp.test/",
        "exp": NOW + 600,
        "iat": NOW - 10,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs(payload: dict[str, Any], *, secret: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=alg)


def hs_settings(**overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "mode": "required",
        "secret": SECRET,
        "audience": "pricewire",
        "issuer": "https://idp.test/",
    }
    values.update(overrides)
    return AuthSettings(**values)


# -- verification table ----------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    token: str
    expected: type[AuthError] | None
    settings: dict[str, Any] = field(default_factory=dict)


def cases() -> list[Case]:
    return [
        Case("valid", hs(claims()), None),
        Case("expired", hs(claims(exp=NOW - 100)), ExpiredToken),
        Case("expired exactly at the leeway edge", hs(claims(exp=NOW - 10)), ExpiredToken),
        Case("expired but within the leeway", hs(claims(exp=NOW - 5)), None),
        Case("no leeway", hs(claims(exp=NOW - 1)), ExpiredToken, {"leeway_s": 0}),
        Case("not valid yet", hs(claims(nbf=NOW + 100)), NotYetValid),
        Case("nbf within the leeway", hs(claims(nbf=NOW + 5)), None),
        Case("wrong audience", hs(claims(aud="someone-else")), WrongAudience),
        Case("audience list naming us", hs(claims(aud=["x", "pricewire"])), None),
        Case("audience missing", hs(claims(aud=None)), WrongAudience),
        Case(
            "audience present, none configured",
            hs(claims()),
            WrongAudience,
            {"audience": None},
        ),
        Case("wrong issuer", hs(claims(iss="https://evil.test/")), WrongIssuer),
        Case("issuer missing", hs(claims(iss=None)), WrongIssuer),
        Case("issuer not checked when unset", hs(claims(iss="any")), None, {"issuer": None}),
        Case("exp missing", hs(claims(exp=None)), InvalidClaim),
        Case("exp missing, not required", hs(claims(exp=None)), None, {"require_exp": False}),
        Case("exp not a number", hs(claims(exp="tomorrow")), InvalidClaim),
        Case("exp a boolean", hs(claims(exp=True)), InvalidClaim),
        Case("exp beyond year 9999", hs(claims(exp=10**13)), InvalidClaim),
        Case("nbf not a number", hs(claims(nbf=[1])), InvalidClaim),
        Case("sub not a string", hs(claims(sub=42)), InvalidClaim),
        Case("groups not a list", hs(claims(groups=7)), InvalidClaim),
        Case("groups with a non-string", hs(claims(groups=["prices", 1])), InvalidClaim),
        Case("another secret", hs(claims(), secret="x" * 40), BadSignature),
        Case("tampered payload", tamper(hs(claims())), BadSignature),
        Case("alg none", unsigned(claims()), UnsupportedAlgorithm),
        Case("alg HS384", hs(claims(), alg="HS384", secret="y" * 48), UnsupportedAlgorithm),
        Case(
            "alg in header missing", hand_made({"typ": "JWT"}, claims(), b"k"), UnsupportedAlgorithm
        ),
        Case("empty", "", MalformedToken),
        Case("two segments", "abc.def", MalformedToken),
        Case("not base64", "a*b.c.d", MalformedToken),
        Case("header not JSON", f"{b64(b'nope')}.{b64(b'{}')}.{b64(b'x')}", MalformedToken),
        Case("header a JSON list", f"{b64(b'[1]')}.{b64(b'{}')}.{b64(b'x')}", MalformedToken),
        Case("payload not JSON", hand_made_raw(b"not json"), MalformedToken),
        Case("payload a JSON list", hand_made_raw(b"[1, 2]"), MalformedToken),
        Case("too long", "a" * (MAX_TOKEN_CHARS + 1), MalformedToken),
        Case(
            "too long but well formed",
            hs(claims(pad="p" * MAX_TOKEN_CHARS)),
            MalformedToken,
        ),
        Case(
            "kid is ignored with a static key",
            jwt.encode(claims(), SECRET, headers={"kid": "zz"}),
            None,
        ),
    ]


def tamper(token: str) -> str:
    header, _payload, signature = token.split(".")
    return f"{header}.{b64(json.dumps(claims(sub='admin')).encode())}.{signature}"


def unsigned(payload: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(payload).encode())}."


def hand_made_raw(payload: bytes) -> str:
    header = b64(json.dumps({"alg": "HS256"}).encode())
    signing_input = f"{header}.{b64(payload)}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_verify_accepts_or_refuses_each_token_with_the_right_error(case: Case) -> None:
    verifier = TokenVerifier(hs_settings(**case.settings))
    if case.expected is None:
        principal = verifier.verify(case.token, now=NOW)
        assert principal.subject == "user-1"
        assert not principal.anonymous
    else:
        with pytest.raises(case.expected) as caught:
            verifier.verify(case.token, now=NOW)
        assert type(caught.value) is case.expected
        assert caught.value.code == "unauthorized"


@pytest.mark.parametrize("case", [c for c in cases() if c.expected], ids=lambda c: c.name)
def test_a_refused_token_never_appears_in_the_error_its_text_or_its_traceback(case: Case) -> None:
    verifier = TokenVerifier(hs_settings(**case.settings))
    with pytest.raises(AuthError) as caught:
        verifier.verify(case.token, now=NOW)
    error = caught.value
    # the PyJWT exception (whose text may quote the token) is neither cause nor context
    assert error.__cause__ is None
    assert error.__context__ is None
    rendered = [str(error), repr(error), "".join(traceback.format_exception(error))]
    pieces = [p for p in (case.token, *case.token.split(".")) if len(p) >= 8]
    for text in rendered:
        for piece in pieces:
            assert piece not in text


def test_principal_and_settings_reprs_hold_neither_token_nor_secret() -> None:
    settings = hs_settings()
    token = hs(claims(groups=["prices"]))
    principal = TokenVerifier(settings).verify(token, now=NOW)
    for text in (repr(principal), str(principal), repr(settings), str(settings)):
        assert token not in text
        assert SECRET not in text
        for piece in token.split("."):
            assert piece not in text
    assert principal.groups == {Group.PRICES}
    assert principal.expires_at is not None
    assert principal.expires_at.timestamp() == NOW + 600


def test_verify_uses_the_real_clock_by_default() -> None:
    verifier = TokenVerifier(hs_settings())
    assert verifier.verify(hs(claims(exp=time.time() + 60))).subject == "user-1"
    with pytest.raises(ExpiredToken):
        verifier.verify(hs(claims(exp=time.time() - 60)))


# -- asymmetric keys and algorithm confusion ---------------------------------------------------------


def asym_settings(alg: str, public_pem: str, **overrides: Any) -> AuthSettings:
    return AuthSettings(
        mode="required", algorithm=alg, public_key=public_pem, audience="pricewire", **overrides
    )


@pytest.mark.parametrize(
    ("alg", "private"),
    [
        ("RS256", rsa_key),
        ("RS512", rsa_key),
        ("PS256", rsa_key),
        ("ES256", lambda: ec_key("P-256")),
        ("ES384", lambda: ec_key("P-384")),
    ],
)
def test_asymmetric_tokens_verify_with_the_public_key(alg: str, private: Any) -> None:
    key = private()
    verifier = TokenVerifier(asym_settings(alg, pem(key)))
    token = jwt.encode(claims(iss=None, groups=["alerts"]), key, algorithm=alg)
    principal = verifier.verify(token, now=NOW)
    assert principal.groups == {Group.ALERTS}
    other: Any = (
        ec.generate_private_key(key.curve)
        if alg.startswith("ES")
        else rsa.generate_private_key(65537, 2048)
    )
    forged = jwt.encode(claims(iss=None), other, algorithm=alg)
    with pytest.raises(BadSignature):
        verifier.verify(forged, now=NOW)


def test_an_hs256_token_signed_with_the_rsa_public_key_is_refused_before_any_key_use() -> None:
    public_pem = pem(rsa_key())
    verifier = TokenVerifier(asym_settings("RS256", public_pem))
    # the classic confusion attack: the public key used as an HMAC secret
    forged = hand_made({"alg": "HS256", "typ": "JWT"}, claims(iss=None), public_pem.encode())
    with pytest.raises(UnsupportedAlgorithm):
        verifier.verify(forged, now=NOW)


def test_a_token_claiming_the_configured_algorithm_but_signed_otherwise_is_refused() -> None:
    verifier = TokenVerifier(asym_settings("RS256", pem(rsa_key())))
    forged = hand_made({"alg": "RS256"}, claims(iss=None), b"anything")
    with pytest.raises(BadSignature):
        verifier.verify(forged, now=NOW)


def test_es256_and_rs256_tokens_are_not_interchangeable() -> None:
    verifier = TokenVerifier(asym_settings("ES256", pem(ec_key())))
    with pytest.raises(UnsupportedAlgorithm):
        verifier.verify(jwt.encode(claims(iss=None), rsa_key(), algorithm="RS256"), now=NOW)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"secret": "short"}, "at least 32 bytes"),
        ({"algorithm": "HS512", "secret": "z" * 40}, "at least 64 bytes"),
        ({"secret": "-----BEGIN PUBLIC KEY-----" + "x" * 40}, "PEM"),
    ],
)
def test_unusable_hmac_secrets_are_refused_at_start(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(AuthConfigError, match=message):
        TokenVerifier(hs_settings(**overrides))


@pytest.mark.parametrize(
    ("alg", "public_pem", "message"),
    [
        ("RS256", lambda: pem(ec_key()), "RSA public key"),
        ("ES256", lambda: pem(rsa_key()), "EC public key"),
        ("ES256", lambda: pem(ec_key("P-384")), "secp256r1"),
        ("RS256", lambda: pem(rsa_key(1024)), "2048 bits"),
        ("RS256", lambda: "not a pem", "not a PEM"),
    ],
)
def test_unusable_public_keys_are_refused_at_start(alg: str, public_pem: Any, message: str) -> None:
    with pytest.raises(AuthConfigError, match=message):
        TokenVerifier(asym_settings(alg, public_pem()))


def test_keys_and_secrets_load_from_files(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")  # a trailing newline is not part of the secret
    verifier = TokenVerifier(hs_settings(secret=None, secret_file=secret_file))
    assert verifier.verify(hs(claims()), now=NOW).subject == "user-1"

    key_file = tmp_path / "key.pem"
    key_file.write_text(pem(ec_key()))
    verifier = TokenVerifier(
        AuthSettings(mode="required", algorithm="ES256", public_key_file=key_file)
    )
    token = jwt.encode(claims(aud=None, iss=None), ec_key(), algorithm="ES256")
    assert verifier.verify(token, now=NOW).subject == "user-1"

    with pytest.raises(AuthConfigError, match="cannot read"):
        TokenVerifier(hs_settings(secret=None, secret_file=tmp_path / "missing"))


@pytest.mark.parametrize(
    "values",
    [
        {"mode": "required"},
        {"mode": "optional", "algorithm": "HS256", "public_key": "x"},
        {"mode": "required", "algorithm": "RS256", "secret": SECRET},
        {"mode": "required", "secret": SECRET, "secret_file": "/x"},
        {"mode": "required", "algorithm": "RS256", "public_key": "x", "jwks_url": "https://a/"},
        {"mode": "required", "algorithm": "none", "secret": SECRET},
        {"mode": "sometimes"},
        {"mode": "off", "unknown_field": 1},
        {"mode": "off", "leeway_s": -1},
    ],
)
def test_settings_refuse_inconsistent_configurations(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AuthSettings(**values)


def test_settings_need_no_key_when_auth_is_off() -> None:
    assert AuthSettings().mode == "off"
    assert isinstance(create_authenticator(AuthSettings()), DisabledAuthenticator)


# -- groups ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim_value", "expected"),
    [
        (None, ALL_GROUPS),
        ([], frozenset()),
        (["prices"], {Group.PRICES}),
        (["prices", "news"], {Group.PRICES, Group.NEWS}),
        ("prices alerts", {Group.PRICES, Group.ALERTS}),
        (["all"], ALL_GROUPS),
        (["market", "prices", "news", "alerts"], ALL_GROUPS),
        (["prices", "futures"], {Group.PRICES}),
        (["PRICES"], frozenset()),
    ],
)
def test_the_groups_claim_decides_the_allowed_groups(claim_value: Any, expected: Any) -> None:
    payload = claims(groups=claim_value) if claim_value is not None else claims()
    principal = TokenVerifier(hs_settings()).verify(hs(payload), now=NOW)
    assert principal.groups == frozenset(expected)


def test_a_nested_groups_claim_is_followed_by_its_dotted_path() -> None:
    settings = hs_settings(groups_claim="pricewire.groups")
    token = hs(claims(pricewire={"groups": ["news"]}))
    assert TokenVerifier(settings).verify(token, now=NOW).groups == {Group.NEWS}
    # the path missing altogether: every group (an unrestricted token)
    assert TokenVerifier(settings).verify(hs(claims()), now=NOW).groups == ALL_GROUPS


@pytest.mark.parametrize(
    ("allowed", "requested", "granted"),
    [
        (ALL_GROUPS, Group.ALL, set(DATA_GROUPS)),
        (ALL_GROUPS, Group.NEWS, {Group.NEWS}),
        ({Group.PRICES}, Group.PRICES, {Group.PRICES}),
        ({Group.PRICES}, Group.ALERTS, set()),
        ({Group.PRICES, Group.NEWS}, Group.ALL, {Group.PRICES, Group.NEWS}),
        (set(), Group.ALL, set()),
    ],
)
def test_a_principal_grants_only_its_allowed_data_groups(
    allowed: Any, requested: Group, granted: Any
) -> None:
    principal = Principal(subject="u", groups=frozenset(allowed))
    assert principal.grant(requested) == granted
    assert principal.allows(requested) == (requested in allowed)


# -- per-connection state ----------------------------------------------------------------------------


def principal(
    groups: Any = ALL_GROUPS, *, subject: str = "u", exp: float | None = NOW + 60
) -> Principal:
    from datetime import UTC, datetime

    expires = None if exp is None else datetime.fromtimestamp(exp, UTC)
    return Principal(subject=subject, groups=frozenset(groups), expires_at=expires)


def test_required_mode_refuses_subscriptions_until_auth_then_closes_at_the_timeout() -> None:
    session = AuthSession(hs_settings(auth_timeout_s=10), connected_at=NOW)
    assert session.check_subscribe(Group.PRICES) == "auth_required"
    assert session.grant(Group.ALL) == frozenset()
    assert session.deadline() == (NOW + 10, CloseCode.AUTH_TIMEOUT)
    assert session.due(NOW + 9.9) is None
    assert session.due(NOW + 10) is CloseCode.AUTH_TIMEOUT


def test_required_mode_after_auth_allows_the_claim_groups_and_forbids_the_rest() -> None:
    session = AuthSession(hs_settings(), connected_at=NOW)
    session.authenticate(principal({Group.PRICES}), now=NOW + 1)
    assert session.authenticated
    assert session.check_subscribe(Group.PRICES) is None
    assert session.check_subscribe(Group.ALERTS) == "forbidden"
    assert session.check_subscribe(Group.ALL) is None  # all = every allowed group
    assert session.grant(Group.ALL) == {Group.PRICES}
    assert session.due(NOW + 60) is None  # expired, but inside the grace
    assert session.due(NOW + 90) is CloseCode.TOKEN_EXPIRED


def test_an_expired_token_closes_after_the_grace_unless_a_new_token_arrives() -> None:
    session = AuthSession(hs_settings(expiry_grace_s=30), connected_at=NOW)
    session.authenticate(principal(exp=NOW + 60), now=NOW)
    assert session.deadline() == (NOW + 90, CloseCode.TOKEN_EXPIRED)
    assert session.due(NOW + 89) is None
    assert session.due(NOW + 90) is CloseCode.TOKEN_EXPIRED
    # re-authenticating inside the grace moves the deadline
    session.authenticate(principal(exp=NOW + 3600), now=NOW + 70)
    assert session.due(NOW + 90) is None
    assert session.deadline() == (NOW + 3630, CloseCode.TOKEN_EXPIRED)


def test_a_token_without_exp_never_expires_the_connection() -> None:
    session = AuthSession(hs_settings(require_exp=False), connected_at=NOW)
    session.authenticate(principal(exp=None), now=NOW)
    assert session.deadline() is None


def test_optional_mode_gives_anonymous_clients_every_group_and_no_deadline() -> None:
    session = AuthSession(hs_settings(mode="optional"), connected_at=NOW)
    assert not session.authenticated
    assert session.check_subscribe(Group.ALERTS) is None
    assert session.grant(Group.ALL) == set(DATA_GROUPS)
    assert session.deadline() is None
    revoked = session.authenticate(principal({Group.PRICES, Group.MARKET}), now=NOW)
    assert revoked == {Group.NEWS, Group.ALERTS}
    assert session.check_subscribe(Group.ALERTS) == "forbidden"
    assert session.deadline() == (NOW + 90, CloseCode.TOKEN_EXPIRED)


def test_off_mode_has_no_deadline_and_every_group() -> None:
    session = AuthSession(AuthSettings(), connected_at=NOW)
    assert session.check_subscribe(Group.ALL) is None
    assert session.deadline() is None
    assert session.due(NOW + 10**6) is None


def test_re_authentication_reports_revoked_groups_and_refuses_another_subject() -> None:
    session = AuthSession(hs_settings(), connected_at=NOW)
    assert session.authenticate(principal(ALL_GROUPS), now=NOW) == frozenset()
    assert session.authenticate(principal({Group.NEWS}), now=NOW + 1) == {
        Group.MARKET,
        Group.PRICES,
        Group.ALERTS,
    }
    with pytest.raises(SubjectChanged) as caught:
        session.authenticate(principal(subject="mallory"), now=NOW + 2)
    assert caught.value.code == "forbidden"
    assert session.principal is not None
    assert session.principal.subject == "u"


# -- handshake ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "protocols", "allow_query", "expected"),
    [
        ("", [], True, None),
        ("token=abc", [], True, "abc"),
        ("access_token=abc", [], True, "abc"),
        ("client_type=browser&token=abc", [], True, "abc"),
        ("token=abc&access_token=abc", [], True, "abc"),
        ("token=abc", [], False, None),
        ("", ["pricewire.v1", "bearer.abc"], True, "abc"),
        ("", ["bearer.abc"], False, "abc"),
        ("token=abc", ["bearer.abc"], True, "abc"),
        ("", ["pricewire.v1"], True, None),
        ("tokens=abc", ["Bearer.abc"], True, None),
        ("token=a%2Bb", [], True, "a+b"),
    ],
)
def test_handshake_token_is_found_in_the_query_or_the_subprotocol(
    query: str, protocols: list[str], allow_query: bool, expected: str | None
) -> None:
    assert handshake_token(query=query, subprotocols=protocols, allow_query=allow_query) == expected


@pytest.mark.parametrize(
    ("query", "protocols"),
    [
        ("token=abc&token=xyz", []),
        ("token=abc", ["bearer.xyz"]),
        ("", ["bearer.abc", "bearer.xyz"]),
        ("token=", []),
        ("", ["bearer."]),
        ("&".join(f"p{i}=1" for i in range(100)), []),
    ],
)
def test_ambiguous_or_empty_handshake_tokens_are_malformed(
    query: str, protocols: list[str]
) -> None:
    with pytest.raises(MalformedToken):
        handshake_token(query=query, subprotocols=protocols)


def test_the_edge_echoes_its_own_subprotocol_never_the_bearer_entry() -> None:
    offered = offered_subprotocols(["pricewire.v1, bearer.abc.def.ghi", "other"])
    assert offered == ["pricewire.v1", "bearer.abc.def.ghi", "other"]
    assert select_subprotocol(offered) == EDGE_SUBPROTOCOL
    assert select_subprotocol(["bearer.abc"]) is None
    assert select_subprotocol([]) is None


# -- authenticators ------------------------------------------------------------------------------


async def test_disabled_authenticator_explains_that_auth_is_not_configured() -> None:
    authenticator = create_authenticator(AuthSettings(mode="off"))
    await authenticator.start()
    with pytest.raises(AuthNotConfigured) as caught:
        await authenticator.verify(hs(claims()))
    assert caught.value.code == "unauthorized"
    assert "not configured" in str(caught.value)
    await authenticator.aclose()


async def test_static_key_authenticator_verifies_with_the_real_clock() -> None:
    authenticator = create_authenticator(hs_settings())
    assert isinstance(authenticator, StaticKeyAuthenticator)
    await authenticator.start()
    principal = await authenticator.verify(hs(claims(exp=time.time() + 60)))
    assert principal.subject == "user-1"
    await authenticator.aclose()


# -- property-based ------------------------------------------------------------------------------

_VERIFIER = TokenVerifier(hs_settings())
_JWS_ALPHABET = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def outcome(token: str) -> Principal | AuthError:
    try:
        return _VERIFIER.verify(token, now=NOW)
    except AuthError as error:  # anything else propagates and fails the test
        return error


@settings(deadline=None)
@given(st.text(max_size=300) | st.text(_JWS_ALPHABET, max_size=300))
def test_any_string_is_either_a_principal_or_an_auth_error(token: str) -> None:
    result = outcome(token)
    assert isinstance(result, InvalidToken)
    assert result.__context__ is None


@settings(deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["sub", "exp", "nbf", "iat", "aud", "iss", "groups", "x"]), json_values
    ),
    st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "b64"]), json_values),
)
def test_any_signed_claims_and_header_give_a_principal_or_an_auth_error(
    payload: dict[str, Any], header: dict[str, Any]
) -> None:
    # signed with the right key, so every claim and header check is reached
    result = outcome(hand_made({"alg": "HS256", **header}, payload, SECRET.encode()))
    if isinstance(result, AuthError):
        assert result.__context__ is None
    else:
        assert result.groups <= ALL_GROUPS


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6), st.floats(min_value=0, max_value=300))
def test_expiry_is_decided_by_exp_and_leeway_alone(offset: float, leeway: float) -> None:
    verifier = TokenVerifier(hs_settings(leeway_s=leeway))
    token = hs(claims(exp=NOW + offset))
    if NOW + offset <= NOW - leeway:
        with pytest.raises(ExpiredToken):
            verifier.verify(token, now=NOW)
    else:
        assert verifier.verify(token, now=NOW).subject == "user-1"


# -- JWKS ------------------------------------------------------------------------------------------


def jwk(
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str | None, **extra: Any
) -> dict[str, Any]:
    if isinstance(private, rsa.RSAPrivateKey):
        data = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        data = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    if kid is not None:
        data["kid"] = kid
    data.update(extra)
    return data


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving a JWKS the test can change."""

    def __init__(self) -> None:
        self.document: bytes = b'{"keys": []}'
        self.status = 200
        self.requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                body = owner.document
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def serve(self, *keys: dict[str, Any]) -> None:
        self.document = json.dumps({"keys": list(keys)}).encode()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    yield server
    server.stop()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def jwks_settings(url: str, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "mode": "required",
        "algorithm": "RS256",
        "jwks_url": url,
        "audience": "pricewire",
        "jwks_cache_ttl_s": 300,
        "jwks_min_refresh_interval_s": 30,
    }
    values.update(overrides)
    return AuthSettings(**values)


def rs(private: rsa.RSAPrivateKey, kid: str | None, **overrides: Any) -> str:
    headers = {"kid": kid} if kid else None
    payload = claims(iss=None, exp=time.time() + 600, **overrides)
    return jwt.encode(payload, private, algorithm="RS256", headers=headers)


async def test_jwks_keys_are_fetched_once_and_cached(jwks_server: JwksServer) -> None:
    key = rsa_key()
    jwks_server.serve(jwk(key, "k1"))
    authenticator = create_authenticator(jwks_settings(jwks_server.url))
    assert isinstance(authenticator, JwksAuthenticator)
    try:
        await authenticator.start()
        for _ in range(3):
            assert (await authenticator.verify(rs(key, "k1"))).subject == "user-1"
        assert jwks_server.requests == 1
    finally:
        await authenticator.aclose()


async def test_an_unknown_kid_refetches_the_jwks_to_follow_a_key_rotation(
    jwks_server: JwksServer,
) -> None:
    old, new = rsa_key(), rsa.generate_private_key(65537, 2048)
    jwks_server.serve(jwk(old, "old"))
    clock = FakeClock()
    authenticator = JwksAuthenticator(jwks_settings(jwks_server.url), clock=clock)
    try:
        assert (await authenticator.verify(rs(old, "old"))).subject == "user-1"
        jwks_server.serve(jwk(old, "old"), jwk(new, "new"))
        clock.now += 31
        assert (await authenticator.verify(rs(new, "new"))).subject == "user-1"
        assert jwks_server.requests == 2
    finally:
        await authenticator.aclose()


async def test_unknown_kids_cannot_make_the_edge_hammer_the_identity_provider(
    jwks_server: JwksServer,
) -> None:
    key = rsa_key()
    jwks_server.serve(jwk(key, "k1"))
    clock = FakeClock()
    authenticator = JwksAuthenticator(jwks_settings(jwks_server.url), clock=clock)
    try:
        await authenticator.start()
        clock.now += 31
        for i in range(20):
            with pytest.raises(UnknownKey):
                await authenticator.verify(rs(key, f"made-up-{i}"))
        assert jwks_server.requests == 2  # start, then one refresh for the whole burst
        clock.now += 31
        with pytest.raises(UnknownKey):
            await authenticator.verify(rs(key, "made-up-again"))
        assert jwks_server.requests == 3
    finally:
        await authenticator.aclose()


async def test_concurrent_unknown_kids_share_one_fetch(jwks_server: JwksServer) -> None:
    old, new = rsa_key(), rsa.generate_private_key(65537, 2048)
    jwks_server.serve(jwk(old, "old"))
    clock = FakeClock()
    authenticator = JwksAuthenticator(jwks_settings(jwks_server.url), clock=clock)
    try:
        await authenticator.start()
        jwks_server.serve(jwk(old, "old"), jwk(new, "new"))
        clock.now += 31
        results = await asyncio.gather(*(authenticator.verify(rs(new, "new")) for _ in range(10)))
        assert all(p.subject == "user-1" for p in results)
        assert jwks_server.requests == 2
    finally:
        await authenticator.aclose()


async def test_the_jwks_is_refetched_when_the_cache_is_older_than_its_ttl(
    jwks_server: JwksServer,
) -> None:
    key = rsa_key()
    jwks_server.serve(jwk(key, "k1"))
    clock = FakeClock()
    authenticator = JwksAuthenticator(jwks_settings(jwks_server.url), clock=clock)
    try:
        await authenticator.verify(rs(key, "k1"))
        clock.now += 299
        await authenticator.verify(rs(key, "k1"))
        assert jwks_server.requests == 1
        clock.now += 2
        await authenticator.verify(rs(key, "k1"))
        assert jwks_server.requests == 2
    finally:
        await authenticator.aclose()


@pytest.mark.parametrize(
    ("status", "document"),
    [(500, b"{}"), (200, b"<html>"), (200, b'{"keys": "no"}'), (200, b'{"keys": []}')],
)
async def test_a_broken_jwks_endpoint_keeps_the_cached_keys(
    jwks_server: JwksServer, status: int, document: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    key = rsa_key()
    jwks_server.serve(jwk(key, "k1"))
    clock = FakeClock()
    authenticator = JwksAuthenticator(jwks_settings(jwks_server.url), clock=clock)
    try:
        await authenticator.start()
        jwks_server.status, jwks_server.document = status, document
        clock.now += 400  # past the TTL: a refetch is due and fails
        token = rs(key, "k1")
        with caplog.at_level(logging.DEBUG, logger="pricewire.edge.auth"):
            assert (await authenticator.verify(token)).subject == "user-1"
        assert jwks_server.requests == 2
        assert any("jwks" in r.getMessage() for r in caplog.records)
        assert token not in caplog.text
    finally:
        await authenticator.aclose()


async def test_without_any_key_tokens_get_keys_unavailable(jwks_server: JwksServer) -> None:
    jwks_server.status = 503
    clock = FakeClock()
    authenticator = JwksAuthenticator(jwks_settings(jwks_server.url), clock=clock)
    try:
        await authenticator.start()  # logs, does not raise
        with pytest.raises(KeysUnavailable) as caught:
            await authenticator.verify(rs(rsa_key(), "k1"))
        assert caught.value.code == "unauthorized"
        # and malformed tokens are still malformed, not a key problem
        with pytest.raises(MalformedToken):
            await authenticator.verify("garbage")
    finally:
        await authenticator.aclose()


async def test_an_unreachable_jwks_server_gives_keys_unavailable() -> None:
    server = JwksServer()  # bound but never serving, then closed: nothing listens on the port
    url = server.url
    server.httpd.server_close()
    authenticator = JwksAuthenticator(jwks_settings(url, jwks_timeout_s=2))
    try:
        with pytest.raises(KeysUnavailable):
            await authenticator.verify(rs(rsa_key(), "k1"))
    finally:
        await authenticator.aclose()


async def test_a_token_without_kid_uses_the_only_key_of_the_set(jwks_server: JwksServer) -> None:
    key = ec_key()
    jwks_server.serve(jwk(key, None))
    authenticator = JwksAuthenticator(jwks_settings(jwks_server.url, algorithm="ES256"))
    try:
        token = jwt.encode(claims(iss=None, exp=time.time() + 60), key, algorithm="ES256")
        assert (await authenticator.verify(token)).subject == "user-1"
    finally:
        await authenticator.aclose()


def test_parse_jwks_keeps_only_keys_usable_for_the_configured_algorithm() -> None:
    good = jwk(rsa_key(), "good")
    document = {
        "keys": [
            good,
            jwk(rsa_key(), "enc", use="enc"),
            jwk(rsa_key(), "other-alg", alg="RS512"),
            jwk(ec_key(), "ec"),
            jwk(rsa_key(1024), "short"),
            {"kty": "oct", "k": b64(SECRET.encode()), "kid": "oct"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kty": "RSA", "kid": 7, **{k: good[k] for k in ("n", "e")}},
            "not an object",
        ]
    }
    assert set(parse_jwks(json.dumps(document).encode(), "RS256")) == {"good"}
    assert set(parse_jwks(document, "ES256")) == {"ec"}
    with pytest.raises(ValueError, match="JWKS"):
        parse_jwks(b"[]", "RS256")


def test_jwks_configuration_cannot_be_symmetric() -> None:
    with pytest.raises(ValidationError):
        AuthSettings(mode="required", algorithm="HS256", jwks_url="https://idp.test/jwks")
