"""pytest fixtures shared by every test package (enabled in the root ``conftest.py``).

``nats_server``: a fresh real nats-server with JetStream per test. Set
``PRICEWIRE_TEST_NATS=docker`` on a machine with a Docker engine to have testcontainers start
the ``nats:2`` image instead; the binary path is the default and always works.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from .nats_server import NatsServer


class _DockerNats:  # pragma: no cover - needs a Docker engine
    def __init__(self) -> None:
        from testcontainers.core.container import DockerContainer

        self.container: Any = DockerContainer("nats:2").with_command("-js").with_exposed_ports(4222)
        self.container.start()
        host = self.container.get_container_host_ip()
        self.url = f"nats://{host}:{self.container.get_exposed_port(4222)}"

    def stop(self) -> None:
        self.container.stop()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    if os.environ.get("PRICEWIRE_TEST_NATS") == "docker":  # pragma: no cover
        docker = _DockerNats()
        server = NatsServer(tmp_path / "js")
        server.port = int(docker.url.rsplit(":", 1)[1])
        yield server
        docker.stop()
        return
    server = NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log").start()
    yield server
    server.stop()


@pytest_asyncio.fixture
async def nats_client(nats_server: NatsServer) -> AsyncIterator[Any]:
    import nats

    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()
