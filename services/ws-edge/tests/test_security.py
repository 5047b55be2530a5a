"""Issue 6 at the edge: auth, permissions, origin, connection caps, rate limits, timeouts, wss."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import ssl
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pricewire_common.encoding import dumps
from pricewire_contracts import AlertData, AlertMessage, PriceData, PriceUpdate, SubjectCatalog
from pricewire_edge.auth import AuthSettings
from pricewire_edge.limits import LimitsSettings

from .conftest import EdgeFactory, open_client, recv_json, recv_type, wait_for, ws_url

S = SubjectCatalog()
SECRET = "s3cret-for-tests-only-0123456789abcdef"


def token(*, groups: list[str] | None = None, exp_in: float = 600, sub: str = "alice") -> str:
    claims: dict[str, Any] = {"sub": sub, "exp": int(time.time() + exp_in)}
    if groups is not None:
        claims["groups"] = groups
    return jwt.encode(claims, SECRET, algorithm="HS256")


def auth(mode: str = "required", **extra: Any) -> AuthSettings:
    return AuthSettings(mode=mode, secret=SECRET, leeway_s=0, **extra)  # type: ignore[arg-type]


async def closed_code(ws: Any, timeout: float = 10) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await recv_json(ws, timeout)
    return ws.close_code  # type: ignore[no-any-return]


async def test_auth_message_is_answered_auth_ok_and_a_bad_token_gets_an_error(
    make_edge: EdgeFactory,
) -> None:
    edge = await make_edge(auth=auth("optional"))
    ws = await open_client(edge)
    await ws.send(json.dumps({"type": "auth", "token": "not-a-jwt"}))
    err = await recv_type(ws, "error")
    assert err["code"] == "unauthorized"
    good = token(groups=["prices"])
    await ws.send(json.dumps({"type": "auth", "token": good}))
    ok = await recv_type(ws, "auth_ok")
    assert ok["subject"] == "alice"
    assert ok["groups"] == ["prices"]
    await ws.send(json.dumps({"type": "ping"}))
    assert (await recv_type(ws, "pong"))["type"] == "pong"  # the connection lived through it
    await ws.close()


async def test_required_mode_refuses_subscribe_before_auth_and_closes_the_silent(
    make_edge: EdgeFactory,
) -> None:
    edge = await make_edge(auth=auth("required", auth_timeout_s=1.0))
    ws = await open_client(edge)
    await ws.send(json.dumps({"type": "subscribe", "group": "prices"}))
    assert (await recv_type(ws, "error"))["code"] == "auth_required"
    assert await closed_code(ws) == 4001


@pytest.mark.parametrize("how", ["query", "subprotocol"])
async def test_a_token_at_the_handshake_authenticates(make_edge: EdgeFactory, how: str) -> None:
    edge = await make_edge(auth=auth("required"))
    if how == "query":
        ws = await connect(ws_url(edge) + "?token=" + token())
    else:
        ws = await connect(ws_url(edge), subprotocols=["pricewire.v1", f"bearer.{token()}"])  # type: ignore[list-item]
        assert ws.subprotocol == "pricewire.v1"
    await recv_type(ws, "welcome")
    await ws.send(json.dumps({"type": "subscribe", "group": "prices"}))
    assert (await recv_type(ws, "subscribed"))["group"] == "prices"
    await ws.close()


async def test_a_bad_handshake_token_closes_with_4003(make_edge: EdgeFactory) -> None:
    edge = await make_edge(auth=auth("required"))
    ws = await connect(ws_url(edge) + "?token=garbage")
    assert await closed_code(ws) == 4003


async def test_group_permissions_come_from_the_token(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    edge = await make_edge(auth=auth("required"))
    ws = await connect(ws_url(edge) + "?token=" + token(groups=["prices"]))
    await recv_type(ws, "welcome")
    await ws.send(json.dumps({"type": "subscribe", "group": "alerts"}))
    assert (await recv_type(ws, "error"))["code"] == "forbidden"
    await ws.send(json.dumps({"type": "subscribe", "group": "all"}))
    await recv_type(ws, "subscribed")
    alert = AlertMessage(data=AlertData(alert_type="large_move", message="m", severity="warning"))
    await nats_client.publish(S.alert("large_move"), dumps(alert))
    await nats_client.publish(
        S.price("BTC"), dumps(PriceUpdate(data=PriceData(symbol="BTC", price=1)))
    )
    got = await recv_json(ws)
    while got["type"] in ("stats_update", "heartbeat"):
        got = await recv_json(ws)
    assert got["type"] == "price_update"  # 'all' narrowed to what the token allows: no alert
    with pytest.raises(TimeoutError):
        await recv_type(ws, "alert", timeout=0.5)
    await ws.close()


async def test_a_token_that_expires_while_connected_closes_with_4010(
    make_edge: EdgeFactory,
) -> None:
    edge = await make_edge(auth=auth("required", expiry_grace_s=0))
    ws = await connect(ws_url(edge) + "?token=" + token(exp_in=1.5))
    await recv_type(ws, "welcome")
    assert await closed_code(ws) == 4010


async def test_tokens_never_reach_the_logs(
    make_edge: EdgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    edge = await make_edge(auth=auth("optional"))
    secret_token = token()
    ws = await connect(ws_url(edge) + "?token=" + secret_token)
    await recv_type(ws, "welcome")
    await ws.send(json.dumps({"type": "auth", "token": secret_token + "x"}))
    await recv_type(ws, "error")
    await ws.close()
    server_side = [
        r.getMessage() for r in caplog.records if not r.name.startswith("websockets.client")
    ]
    assert server_side  # the edge did log the connection
    assert not any(secret_token[:20] in line for line in server_side)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # the Python client and other non-browsers send none
        ("http://localhost:8000", True),
        ("http://127.0.0.1:5173", True),
        ("https://evil.example", False),
    ],
)
async def test_the_origin_allowlist_is_checked_at_the_handshake(
    make_edge: EdgeFactory, origin: str | None, allowed: bool
) -> None:
    edge = await make_edge()
    if allowed:
        ws = await connect(ws_url(edge), origin=origin)  # type: ignore[arg-type]
        await recv_type(ws, "welcome")
        await ws.close()
    else:
        with pytest.raises(InvalidStatus) as refused:
            await connect(ws_url(edge), origin=origin)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403


async def test_connections_per_ip_and_the_global_cap_are_enforced(make_edge: EdgeFactory) -> None:
    edge = await make_edge(limits=LimitsSettings(max_connections_per_ip=2, max_connections=3))
    a, b = await open_client(edge), await open_client(edge)
    third = await connect(ws_url(edge))
    assert await closed_code(third) == 1008
    await a.close()
    await wait_for(lambda: len(edge.connections) == 1)
    c = await open_client(edge)
    assert len(edge.connections) == 2
    for ws in (b, c):
        await ws.close()
    await wait_for(lambda: not edge.connections)
    edge2 = await make_edge(limits=LimitsSettings(max_connections_per_ip=1, max_connections=1))
    first = await open_client(edge2)
    over = await connect(ws_url(edge2))
    assert await closed_code(over) == 1013
    await first.close()


async def test_message_rate_limit_warns_then_closes_with_4008(make_edge: EdgeFactory) -> None:
    edge = await make_edge(
        limits=LimitsSettings(messages_per_s=1, message_burst=2, rate_violations_to_close=3)
    )
    ws = await open_client(edge)
    for _ in range(10):
        await ws.send(json.dumps({"type": "ping"}))
    replies = []
    with pytest.raises(ConnectionClosed):
        while True:
            replies.append(await recv_json(ws))
    kinds = [r["type"] for r in replies if r["type"] != "stats_update"]
    assert kinds[:2] == ["pong", "pong"]
    assert "error" in kinds
    assert all(r["code"] == "rate_limited" for r in replies if r["type"] == "error")
    assert ws.close_code == 4008


async def test_too_many_subscriptions_get_an_error(make_edge: EdgeFactory) -> None:
    edge = await make_edge(limits=LimitsSettings(max_subscriptions=3))
    ws = await open_client(edge)
    await ws.send(
        json.dumps(
            {"type": "subscribe", "group": "prices", "symbols": ["BTC", "ETH", "SOL", "XRP"]}
        )
    )
    assert (await recv_type(ws, "error"))["code"] == "too_many_subscriptions"
    await ws.send(
        json.dumps({"type": "subscribe", "group": "prices", "symbols": ["BTC", "ETH", "SOL"]})
    )
    await recv_type(ws, "subscribed")
    await ws.close()


async def test_a_half_open_connection_is_detected_by_ping_timeout(make_edge: EdgeFactory) -> None:
    edge = await make_edge(limits=LimitsSettings(ping_interval_s=0.3, ping_timeout_s=0.5))
    ws = await open_client(edge, ping_interval=None)
    ws.transport.pause_reading()  # like a peer that vanished: no pong ever comes back
    await wait_for(lambda: not edge.connections, timeout=10)  # closed (1011) and aborted at once
    ws.transport.resume_reading()  # the Close frame reached the socket before the reset
    assert await closed_code(ws) == 1011


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_wss_with_a_certificate(make_edge: EdgeFactory, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    edge = await make_edge(tls_cert_file=cert, tls_key_file=key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    ws = await connect(f"wss://127.0.0.1:{edge.port}/ws", ssl=client_ctx)
    assert (await recv_json(ws))["type"] == "welcome"
    await ws.send(json.dumps({"type": "ping"}))
    assert (await recv_type(ws, "pong"))["type"] == "pong"
    await ws.close()
    await asyncio.sleep(0)
