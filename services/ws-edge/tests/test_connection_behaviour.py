"""Every client message gets its documented reply; bad input gets an error and the link lives."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from pricewire_edge.app import EdgeApp

from .conftest import open_client, recv_json, recv_type, wait_for, ws_url


@pytest.mark.parametrize(
    ("message", "reply_type"),
    [
        ({"type": "subscribe", "group": "market"}, "subscribed"),
        ({"type": "unsubscribe", "group": "market"}, "unsubscribed"),
        ({"type": "ping"}, "pong"),
        ({"type": "get_stats"}, "error"),  # no stats service in this test: stats_unavailable
        ({"type": "auth", "token": "x"}, "error"),
    ],
)
async def test_every_client_message_gets_a_reply(
    edge: EdgeApp, message: dict[str, str], reply_type: str
) -> None:
    ws = await open_client(edge)
    await ws.send(json.dumps(message))
    assert (await recv_json(ws))["type"] == reply_type
    await ws.close()


async def test_bad_input_gets_an_error_and_the_connection_lives_on(edge: EdgeApp) -> None:
    ws = await open_client(edge)
    for bad, code in [
        ("{oops", "invalid_json"),
        (json.dumps({"type": "fly"}), "unknown_type"),
        (json.dumps({"type": "subscribe", "group": "weather"}), "unknown_group"),
        (json.dumps({"type": "subscribe"}), "invalid_message"),
        (b"\x00\x01binary", "invalid_json"),
    ]:
        await ws.send(bad)
        reply = await recv_json(ws)
        assert reply["type"] == "error"
        assert reply["code"] == code
        assert reply["message"]
    await ws.send(json.dumps({"type": "ping"}))
    assert (await recv_json(ws))["type"] == "pong"
    await ws.close()


async def test_welcome_is_the_guides_message(edge: EdgeApp) -> None:
    async with connect(ws_url(edge)) as ws:
        welcome = json.loads(await ws.recv())
    # the guide's fields, in the guide's order, then the resume token (see resume.py)
    assert list(welcome) == ["type", "session_id", "message", "timestamp", "resume_token"]
    assert welcome["message"] == "به سیستم مانیتورینگ کریپتو خوش آمدید"


async def test_client_type_from_user_agent_and_query(edge: EdgeApp) -> None:
    browser = await open_client(
        edge, user_agent_header="Mozilla/5.0 (X11; Linux) Chrome/120 Safari/537"
    )
    api = await open_client(edge)
    mobile = await connect(ws_url(edge) + "?client_type=mobile")
    await recv_type(mobile, "welcome")
    assert edge.report().client_types == {"browser": 1, "api": 1, "mobile": 1}
    for ws in (browser, api, mobile):
        await ws.close()


async def test_heartbeat_is_sent_every_interval(make_edge: object) -> None:
    app = await make_edge(heartbeat_interval_s=0.2)  # type: ignore[operator]
    ws = await open_client(app)
    assert (await recv_type(ws, "heartbeat", timeout=5))["timestamp"]
    await ws.close()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


async def test_health_ready_metrics_and_static_files_are_served(edge: EdgeApp) -> None:
    base = f"http://127.0.0.1:{edge.port}"

    async def get(path: str) -> tuple[int, bytes]:
        return await asyncio.to_thread(_get, base + path)

    assert await get("/health") == (200, b'{"status":"ok"}')
    assert (await get("/ready"))[0] == 200
    status, body = await get("/metrics")
    assert status == 200
    assert b"pricewire_ws_active_connections" in body
    assert (await get("/nope"))[0] == 404
    assert (await get("/static/../settings.py"))[0] == 404


async def test_metrics_count_the_sessions_and_messages_the_clients_saw(edge: EdgeApp) -> None:
    """The guide's figures on /metrics are read from the edge's own counts at scrape time."""
    mobile = await connect(ws_url(edge) + "?client_type=mobile")
    assert (await recv_json(mobile))["type"] == "welcome"
    await mobile.send(json.dumps({"type": "subscribe", "group": "alerts"}))
    await recv_type(mobile, "subscribed")
    other = await open_client(edge)
    await other.send(json.dumps({"type": "ping"}))
    await recv_type(other, "pong")
    await other.close()
    await wait_for(lambda: len(edge.sessions.connections) == 1)

    status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{edge.port}/metrics")
    assert status == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("pricewire_ws_active_connections", ())] == 1
    by_type = {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "pricewire_ws_connections"
    }
    assert by_type == {"browser": 0, "mobile": 1, "api": 0}
    assert samples[("pricewire_ws_sessions_total", ())] == 2
    assert samples[("pricewire_ws_messages_received_total", ())] == 2  # subscribe, ping
    # two welcomes, subscribed, pong, and whatever else the edge sent (snapshot, stats)
    assert samples[("pricewire_ws_messages_sent_total", ())] >= 4
    assert samples[("pricewire_ws_messages_sent_total", ())] == edge.sessions.fanout.messages_sent
    await mobile.close()


async def test_an_oversized_message_closes_with_1009(edge: EdgeApp) -> None:
    ws = await open_client(edge)
    await ws.send("x" * (edge.max_message_bytes + 1))
    with pytest.raises(Exception):  # noqa: B017,PT011 - the close surfaces as ConnectionClosed
        await recv_json(ws)
    assert ws.close_code == 1009
