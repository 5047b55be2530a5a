"""Only its owner can resume a session: the public id is not enough, the private token is.

Also: a NATS failure during a resume ends in ``resume_failed``, never in silence.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY
from websockets.asyncio.client import ClientConnection

from pricewire_common.encoding import dumps
from pricewire_common.testing import NatsServer
from pricewire_contracts import Group, PriceData, PriceUpdate, SubjectCatalog
from pricewire_edge.app import EdgeApp
from pricewire_edge.auth import AuthSettings

from .conftest import EdgeFactory, open_session, recv_json, recv_type, wait_for
from .test_security import SECRET, token

S = SubjectCatalog()


def rejected() -> float:
    value = REGISTRY.get_sample_value(
        "pricewire_ws_resumes_total", {"result": "invalid_resume_token"}
    )
    return value or 0.0


async def subscribed_session(edge: EdgeApp, **kwargs: Any) -> tuple[ClientConnection, str, str]:
    """A client subscribed to prices, once its session record is in KV (resumable)."""
    ws, welcome = await open_session(edge, **kwargs)
    await ws.send(json.dumps({"type": "subscribe", "group": "prices"}))
    await recv_type(ws, "subscribed")
    sid = welcome["session_id"]
    kv = edge.subscriptions_kv
    assert kv is not None

    async def stored() -> bool:
        try:
            await kv.get(sid)
        except Exception:
            return False
        return True

    for _ in range(200):
        if await stored():
            break
        await asyncio.sleep(0.02)
    return ws, sid, welcome["resume_token"]


async def drop(ws: ClientConnection) -> None:
    """The client vanishes: TCP reset, no close frame."""
    ws.transport.abort()
    await ws.wait_closed()


async def resume(ws: ClientConnection, sid: str, secret: str | None) -> dict[str, Any]:
    request: dict[str, Any] = {"type": "resume", "session_id": sid, "last_seq": {"prices": 0}}
    if secret is not None:
        request["resume_token"] = secret
    await ws.send(json.dumps(request))
    while True:
        msg = await recv_json(ws)
        if msg["type"] in ("resumed", "resume_failed"):
            return msg


async def test_welcome_carries_a_private_token_of_at_least_128_bits(make_edge: EdgeFactory) -> None:
    edge = await make_edge()
    (a, first), (b, second) = await open_session(edge), await open_session(edge)
    for welcome in (first, second):
        assert len(welcome["resume_token"]) >= 22  # base64url: 6 bits a character
    assert first["resume_token"] != second["resume_token"]
    await a.close()
    await b.close()


async def test_a_public_session_id_without_its_token_takes_nothing_over(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    edge = await make_edge()
    victim, sid, _ = await subscribed_session(edge)
    attacker, _ = await open_session(edge)
    before = rejected()
    for guess in (None, "", "x" * 32):
        failed = await resume(attacker, sid, guess)
        assert failed["type"] == "resume_failed"
        assert failed["reason"] == "invalid_resume_token"
    assert rejected() - before == 3
    # the owner's connection is untouched: still open, same session, still receiving
    assert edge.by_session[sid] in edge.connections
    await nats_client.jetstream().publish(
        S.price("BTC"), dumps(PriceUpdate(data=PriceData(symbol="BTC", price=7)))
    )
    update = await recv_type(victim, "price_update")
    assert update["data"]["price"] == 7
    await victim.send(json.dumps({"type": "ping"}))
    await recv_type(victim, "pong")
    for ws in (victim, attacker):
        await ws.close()


async def test_a_resume_rotates_the_token_and_the_old_one_no_longer_works(
    make_edge: EdgeFactory,
) -> None:
    edge = await make_edge()
    first, sid, old = await subscribed_session(edge)
    await drop(first)
    await wait_for(lambda: sid not in edge.by_session)
    second, _ = await open_session(edge)
    resumed = await resume(second, sid, old)
    assert resumed["type"] == "resumed"
    new = resumed["resume_token"]
    assert new and new != old
    await wait_for(lambda: edge.by_session.get(sid) is not None)
    # the KV record now holds the new token's digest: wait until the write has landed
    await asyncio.sleep(0.2)
    await drop(second)
    await wait_for(lambda: sid not in edge.by_session)
    third, _ = await open_session(edge)
    assert (await resume(third, sid, old))["reason"] == "invalid_resume_token"
    fourth, _ = await open_session(edge)
    assert (await resume(fourth, sid, new))["type"] == "resumed"
    for ws in (third, fourth):
        await ws.close()


async def test_an_authenticated_session_stays_bound_to_its_subject(make_edge: EdgeFactory) -> None:
    edge = await make_edge(auth=AuthSettings(mode="optional", secret=SECRET, leeway_s=0))
    alice = "bearer." + token(sub="alice")
    owner, sid, secret = await subscribed_session(edge, subprotocols=[alice])
    await drop(owner)
    await wait_for(lambda: sid not in edge.by_session)
    mallory, _ = await open_session(edge, subprotocols=["bearer." + token(sub="mallory")])
    failed = await resume(mallory, sid, secret)
    assert failed["reason"] == "wrong_user"
    await mallory.close()


async def test_the_token_never_reaches_nats_or_the_logs(
    make_edge: EdgeFactory, nats_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[bytes] = []

    async def keep(msg: Any) -> None:
        seen.append(msg.subject.encode() + b" " + msg.data)

    await nats_client.subscribe(">", cb=keep)
    edge = await make_edge()
    ws, sid, secret = await subscribed_session(edge)
    await drop(ws)
    await wait_for(lambda: sid not in edge.by_session)
    again, _ = await open_session(edge)
    resumed = await resume(again, sid, secret)
    assert resumed["type"] == "resumed"
    await asyncio.sleep(0.5)
    assert seen  # session events, KV writes...
    for secret_token in (secret, resumed["resume_token"]):
        assert not any(secret_token.encode() in payload for payload in seen)
        assert not any(secret_token in r.getMessage() for r in caplog.records)
    await again.close()


async def test_nats_hung_during_a_resume_gives_resume_failed_and_keeps_the_client(
    make_edge: EdgeFactory, nats_client: Any, nats_server: NatsServer
) -> None:
    edge = await make_edge()
    await nats_client.jetstream().publish(
        S.price("BTC"), dumps(PriceUpdate(data=PriceData(symbol="BTC", price=5)))
    )
    ws, sid, secret = await subscribed_session(edge)
    await recv_type(ws, "price_update")
    await drop(ws)
    await wait_for(lambda: sid not in edge.by_session)
    again, _ = await open_session(edge)
    with nats_server.paused():
        await again.send(
            json.dumps(
                {
                    "type": "resume",
                    "session_id": sid,
                    "resume_token": secret,
                    "last_seq": {"prices": 0},
                }
            )
        )
        failed = await recv_type(again, "resume_failed", timeout=30)
        assert failed["reason"] == "unavailable"
        # fresh snapshots of the groups it asked for, from the edge's memory
        snapshot = await recv_type(again, "price_update")
        assert snapshot["data"]["symbol"] == "BTC"
        await again.send(json.dumps({"type": "ping"}))
        await recv_type(again, "pong")  # the connection was kept
    await again.close()


async def test_a_stream_error_during_the_replay_gives_resume_failed_not_silence(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    edge = await make_edge(history_messages=1)  # anything older than the last seq is in JetStream
    js = nats_client.jetstream()
    ws, sid, secret = await subscribed_session(edge)
    for n in range(5):
        await js.publish(
            S.price("BTC"), dumps(PriceUpdate(data=PriceData(symbol="BTC", price=n + 1)))
        )
    first = await recv_type(ws, "price_update")
    await drop(ws)
    await wait_for(lambda: sid not in edge.by_session)
    await js.delete_stream(S.stream(Group.PRICES))  # the replay's stream is gone
    again, _ = await open_session(edge)
    await again.send(
        json.dumps(
            {
                "type": "resume",
                "session_id": sid,
                "resume_token": secret,
                "last_seq": {"prices": first["seq"]},
            }
        )
    )
    failed = await recv_type(again, "resume_failed", timeout=30)
    assert failed["reason"] == "unavailable"
    await again.send(json.dumps({"type": "ping"}))
    await recv_type(again, "pong")
    await again.close()


async def test_a_session_subscribed_for_longer_than_the_record_ttl_is_still_resumable(
    make_edge: EdgeFactory,
) -> None:
    # the bucket's TTL is 2 x nats_history_s (4 s here), counted from a record's last write
    edge = await make_edge(nats_history_s=2.0)
    first, sid, secret = await subscribed_session(edge)
    await asyncio.sleep(6.0)  # connected, subscriptions unchanged, past the TTL
    await drop(first)
    await wait_for(lambda: sid not in edge.by_session)
    second, _ = await open_session(edge)
    resumed = await resume(second, sid, secret)
    assert resumed["type"] == "resumed", resumed
    assert "prices" in resumed["last_seq"]  # its subscriptions came back with it
    await second.close()
