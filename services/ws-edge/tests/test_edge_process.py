"""The edge as a real process, driven exactly as the guide's Python example drives it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from pricewire_common.testing import NatsServer, ServiceProcess
from pricewire_contracts import SubjectCatalog

from .conftest import recv_type

# The guide's example, word for word but for the port (and a bounded loop so the test ends).
GUIDE_EXAMPLE = textwrap.dedent(
    """
    import asyncio
    import websockets
    import json

    async def connect():
        uri = "ws://localhost:{port}/ws"
        async with websockets.connect(uri) as websocket:
            # receive the welcome message
            welcome = await websocket.recv()
            print(f"received: {{welcome}}")

            # send a message
            await websocket.send(json.dumps({{
                "type": "subscribe",
                "group": "market"
            }}))

            # receive messages
            async for message in websocket:
                data = json.loads(message)
                print(f"new data: {{data}}", flush=True)
                if data.get("type") == "market_update":
                    break

    asyncio.run(connect())
    """
)


@pytest.fixture
def edge_process(nats_server: NatsServer, tmp_path: Any) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(
        "pricewire_edge",
        env={"PRICEWIRE_NATS_URL": nats_server.url, "PRICEWIRE_DRAIN_WINDOW_S": "0.5"},
        log_file=tmp_path / "edge.log",
    ).start()
    yield proc
    proc.stop()


async def test_the_guides_python_example_works_as_written(
    edge_process: ServiceProcess, nats_client: Any, tmp_path: Any
) -> None:
    script = tmp_path / "guide.py"
    script.write_text(GUIDE_EXAMPLE.format(port=edge_process.port))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert first.decode().startswith("received: {")
    welcome = json.loads(first.decode().removeprefix("received: "))
    assert welcome["type"] == "welcome"
    market = {
        "type": "market_update",
        "data": {"btc": {"price": 43250, "change_24h": 2.5}},
        "timestamp": "t",
    }
    for _ in range(100):  # publish until the example has subscribed and sees one
        await nats_client.publish(SubjectCatalog().market, json.dumps(market).encode())
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 0.3)
            break
        except TimeoutError:
            continue
    else:
        proc.kill()
        pytest.fail("the guide's example never received a market_update")
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert any("'type': 'subscribed'" in line for line in lines)
    assert "'type': 'market_update'" in lines[-1]


async def test_sigterm_closes_clients_with_1012_and_exits_zero(
    edge_process: ServiceProcess,
) -> None:
    ws = await connect(edge_process.url("/ws", scheme="ws"))
    await recv_type(ws, "welcome")
    code = await asyncio.to_thread(edge_process.stop)
    assert code == 0
    with pytest.raises(Exception):  # noqa: B017,PT011 - ConnectionClosed of some kind
        await recv_type(ws, "never", timeout=5)
    assert ws.close_code == 1012
