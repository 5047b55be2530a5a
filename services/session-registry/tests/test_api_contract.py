"""Property-based contract test of the REST API (schemathesis): every generated request gets an
answer its OpenAPI document declares, and never a 5xx. The service behind the API is an
in-memory stand-in (no NATS): this checks the HTTP layer; the NATS paths have their own tests."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from pricewire_common.encoding import dumps
from pricewire_contracts import BroadcastMessage, ClientType, ConnectionStats, SessionOpened
from pricewire_registry.api import create_app
from pricewire_registry.settings import RegistrySettings
from pricewire_registry.store import SessionStore
from pricewire_registry.table import on_opened, session_key


class StandIn:
    def __init__(self) -> None:
        self.settings = RegistrySettings(broadcast_token="t0ken", broadcast_max_bytes=4096)
        self.store: SessionStore | None = SessionStore(None, instance_id="contract")
        self.store.loaded.set()
        for i, kind in enumerate(ClientType):
            sid = f"session-{i}"
            event = SessionOpened(
                session_id=sid,
                edge_id="edge-a",
                client_type=kind,
                connected_at="2024-01-15T10:00:00",
            )
            change = on_opened(None, event, i + 1)
            assert change is not None
            key = session_key(sid)
            assert key is not None
            self.store._absorb(key, dumps(change.record), i + 1, None)
        self.published: list[BroadcastMessage] = []

    def ready(self) -> bool:
        return True

    async def ask_stats(self) -> ConnectionStats:
        return ConnectionStats(
            active_connections=3, total_sessions=3, messages_sent=1, messages_received=1
        )

    async def broadcast(self, message: BroadcastMessage) -> str:
        self.published.append(message)
        return f"pricewire.v1.broadcast.{message.group.value}"


app = create_app(StandIn())
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_request_gets_a_documented_answer_and_never_a_5xx(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": "Bearer t0ken"})
