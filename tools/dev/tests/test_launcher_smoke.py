"""``python -m pricewire_dev run`` as ``make demo`` runs it: the real services that exist."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from pricewire_common.testing import free_port
from pricewire_dev.launcher import module_runnable

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def _descendants(root: int) -> set[int]:
    """Every process below ``root``, from the parent pids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces; the fields after its ")" do not
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_make_demo_serves_one_origin_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pricewire_dev",
        "run",
        "--providers",
        "simulated",
        "--port",
        str(port),
        "--ports-from",
        str(free_port()),
        "--nats-port",
        str(free_port()),
        "--nats-monitor-port",
        str(free_port()),
        "--stop-timeout",
        "10",
        cwd=tmp_path,  # .run/ and logs/ land here, not in the checkout
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    up = asyncio.Event()

    async def read() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            lines.append(line.decode(errors="replace").rstrip())
            if lines[-1].startswith("Pricewire is up"):
                up.set()

    reader = asyncio.create_task(read())
    try:
        waiting = {asyncio.create_task(up.wait()), reader}
        await asyncio.wait(waiting, timeout=180, return_when=asyncio.FIRST_COMPLETED)
        assert up.is_set(), "no banner; the launcher said:\n" + "\n".join(lines[-60:])
        output = "\n".join(lines)
        assert f"ws://localhost:{port}/ws" in output or not module_runnable("pricewire_edge")

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            health = await http.get("/health")
            sessions = await http.get("/api/sessions")
        if module_runnable("pricewire_edge"):
            assert health.status_code == 200
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                welcome = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert welcome["type"] == "welcome"
        else:
            assert health.status_code == 502  # the gateway answers for the missing edge
        if module_runnable("pricewire_registry"):
            assert sessions.status_code == 200
        else:
            assert sessions.status_code == 502

        started = _descendants(proc.pid)
        assert started, "nats-server at least runs under the launcher"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 120) == 0, "\n".join(lines[-60:])
        await asyncio.wait_for(reader, 30)
        assert not [pid for pid in started if _alive(pid)]
        assert (tmp_path / "logs" / "app.log").exists()
        assert (tmp_path / ".run" / "nats").is_dir()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
