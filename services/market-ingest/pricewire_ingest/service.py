"""Process wiring: settings, catalog, keys, NATS (streams, publisher), the engine and the HTTP
endpoints; a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Mapping

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from pricewire_common.httpserver import HttpServer
from pricewire_common.natsconn import NatsLink
from pricewire_common.runtime import shutdown_event
from pricewire_common.streams import ensure_streams
from pricewire_contracts import DATA_GROUPS, Group, ProviderQuotes, SubjectCatalog

from . import metrics
from .adapters import ADAPTERS
from .app import create_app
from .catalog import Catalog, load_catalog
from .engine import IngestEngine
from .plans import apply_plans
from .poller import HttpFetcher
from .settings import IngestSettings

__all__ = ["NatsPublisher", "collect_keys", "recent_news_ids", "serve"]

log = logging.getLogger("pricewire.ingest")

SIMULATED_KEY = "simulated-key"


class NatsPublisher:
    """Publishes market data through JetStream with an acknowledgement, the rest on core NATS.

    A core publish into a stream is dropped while the stream cannot take it (its leader died
    and a new one is being elected on a cluster, or NATS is away); a JetStream publish is
    retried until the stream acknowledges it, for up to ``retry_for_s``, so such a moment
    delays prices instead of losing them. ``Nats-Msg-Id`` (the payload's hash unless the
    caller set one) makes a retry whose first try did land a no-op. Health events, which no
    stream keeps and the next one replaces, stay on core NATS without a flush per message.
    """

    def __init__(
        self, nc: Client, subjects: SubjectCatalog | None = None, *, retry_for_s: float = 30.0
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        subjects = subjects or SubjectCatalog()
        self.kept = tuple(subjects.stream_subject(g).rstrip("*") for g in DATA_GROUPS)
        self.retry_for_s = retry_for_s

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        if not subject.startswith(self.kept):
            await self.nc.publish(subject, payload, headers=headers)
            return
        msg_id = (headers or {}).get("Nats-Msg-Id") or hashlib.sha256(payload).hexdigest()[:32]
        headers = {**(headers or {}), "Nats-Msg-Id": msg_id}
        deadline = time.monotonic() + self.retry_for_s
        delay = 0.05
        while True:
            try:
                await self.js.publish(subject, payload, timeout=2.0, headers=headers)
                return
            except (NatsError, TimeoutError):
                if time.monotonic() + delay > deadline:
                    raise
                metrics.PUBLISH_RETRIES.inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)


def collect_keys(
    catalog: Catalog, environ: Mapping[str, str], *, simulated: bool
) -> dict[str, str]:
    """The keys the catalog asks for, from the environment (only the names it lists).

    With ``simulated`` every missing key gets a placeholder: the simulator does not check keys.
    """
    names = {p.auth.env for p in catalog.providers if p.auth.env}
    keys = {name: environ[name] for name in names if environ.get(name)}
    if simulated:
        for name in names - keys.keys():
            keys[name] = SIMULATED_KEY
    return keys


async def recent_news_ids(
    js: JetStreamContext, subjects: SubjectCatalog, *, limit: int = 1000
) -> list[str]:
    """Ids of the latest stories in the news stream, so a restart does not repeat them."""
    try:
        info = await js.stream_info(subjects.stream(Group.NEWS))
    except Exception:
        return []
    state = info.state
    if not state.messages:
        return []
    first = max(state.first_seq, state.last_seq - limit + 1)
    sub = await js.subscribe(
        subjects.news,
        ordered_consumer=True,
        # only the ids are needed: the Nats-Msg-Id headers, not the bodies
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=first, headers_only=True
        ),
    )
    ids: list[str] = []
    try:
        while True:
            msg = await sub.next_msg(timeout=2.0)
            if msg.headers and msg.headers.get("Nats-Msg-Id"):
                ids.append(msg.headers["Nats-Msg-Id"])
            if msg.metadata.sequence.stream >= state.last_seq:
                break
    except Exception:  # a timeout ends the read: what was read is still useful
        pass
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return ids


async def _follow_other_shards(nc: Client, settings: IngestSettings, engine: IngestEngine) -> None:
    """The consensus shard takes the quotes the other shards poll (``provider.quotes.*``)."""

    async def on_quotes(msg: Msg) -> None:
        try:
            event = ProviderQuotes.model_validate_json(msg.data)
        except ValidationError:
            log.warning("dropped malformed provider quotes", extra={"subject": msg.subject})
            return
        engine.add_remote_quotes(event)

    await nc.subscribe(settings.subjects.provider_quotes_all, cb=on_quotes)
    log.info("consensus shard: following the quotes of the other shards")


async def _run_with_streams(
    engine: IngestEngine, settings: IngestSettings, catalog: Catalog, stop: asyncio.Event
) -> None:
    """The engine, and beside it the venues' WebSocket streams when enabled (the consensus
    shard only: ticks feed the consensus)."""
    if not (settings.stream_enabled and settings.publishes_prices and settings.stream_venues):
        await engine.run(stop)
        return
    from .streaming.ingest import StreamIngest

    streams = StreamIngest(engine, settings, catalog)
    async with asyncio.TaskGroup() as group:
        group.create_task(engine.run(stop))
        group.create_task(streams.run(stop))


async def serve(settings: IngestSettings) -> None:
    catalog = apply_plans(
        load_catalog(settings.catalog_file, families=ADAPTERS),
        os.environ,
        cryptopanic_plan=settings.cryptopanic_plan,
        coingecko_plan=settings.coingecko_plan,
        coingecko_monthly_calls=settings.coingecko_monthly_calls,
    )
    keys = collect_keys(
        catalog, os.environ, simulated=settings.simulated and settings.simulated_keys
    )
    stop = shutdown_event()
    link = NatsLink(settings, name="market-ingest")
    engine: IngestEngine | None = None

    def ready() -> bool:
        return (
            engine is not None and engine.started and link.ready(max_outage_s=settings.max_outage_s)
        )

    server = HttpServer(
        create_app(engine=lambda: engine, ready=ready), host=settings.host, port=settings.port
    )
    await server.start()
    log.info("http listening", extra={"port": server.port})
    fetcher = HttpFetcher(
        max_connections=settings.poll_concurrency, max_body_bytes=settings.max_body_bytes
    )
    try:
        connecting = asyncio.create_task(link.connect())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():
            connecting.cancel()
            return
        stopping.cancel()
        nc = connecting.result()
        js = nc.jetstream()
        await ensure_streams(
            js,
            settings.subjects,
            settings.stream_limits,
        )
        engine = IngestEngine(
            settings,
            catalog,
            fetcher=fetcher,
            publisher=NatsPublisher(nc, settings.subjects),
            keys=keys,
        )
        engine.news.remember(await recent_news_ids(js, settings.subjects))
        if settings.shard_count > 1 and settings.publishes_prices:
            await _follow_other_shards(nc, settings, engine)
        await _run_with_streams(engine, settings, catalog, stop)
    finally:
        log.info("ingest stopping")
        await fetcher.aclose()
        await link.close()
        await server.stop()
