"""JetStream streams and KV buckets, declared in one place.

Any service may call :func:`ensure_streams` at start-up: it creates what is missing and
updates what differs, so the first service up (whichever it is) leaves NATS ready and a
publisher never publishes into a subject no stream captures yet.

=====================  ======================  =========================================
stream                 subjects                why
=====================  ======================  =========================================
``<ROOT>_PRICES``      ``price.*``             ``seq``, resume, last price per symbol
``<ROOT>_MARKET``      ``market``              ``seq``, resume, last market snapshot
``<ROOT>_NEWS``        ``news``                ``seq``, resume, latest items
``<ROOT>_ALERTS``      ``alert.*``             ``seq``, resume, latest alerts
``<ROOT>_CHAIN``       ``chain.*``             the last head of every chain (one per subject)
``<ROOT>_SESSIONS``    ``session.*``           registry's durable consumer: no lost event
=====================  ======================  =========================================

``provider.stats`` is not kept: it is a periodic summary, superseded by the next one, with no
``seq`` (the edge keeps the latest in memory for the market snapshot).

``chain.*`` is kept like a KV bucket: one message per chain, the newest, for ``history_s``
(a chain nobody could read for that long drops out). A reader asks for the last message per
subject and has every chain's head at once, then follows updates. It is not a WebSocket group
(no ``seq``, no resume): each message supersedes the previous one, so ingest publishes it on
core NATS, and a message lost to a leader election is replaced by the next poll's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from pricewire_contracts import Group, SubjectCatalog

__all__ = ["StreamLimits", "ensure_kv", "ensure_streams", "stream_configs"]

log = logging.getLogger("pricewire.streams")

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamLimits:
    """How much history the data streams keep (resume reaches back this far)."""

    history_s: float = 900.0
    max_bytes: int = 256 * 1024 * 1024
    news_history_s: float = 86_400.0
    replicas: int = 1
    duplicate_window_s: float = 120.0


def stream_configs(subjects: SubjectCatalog, limits: StreamLimits) -> list[StreamConfig]:
    def data(group: Group, *, max_age: float, per_subject: int) -> StreamConfig:
        return StreamConfig(
            name=subjects.stream(group),
            subjects=[subjects.stream_subject(group)],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=max_age,
            max_bytes=limits.max_bytes,
            max_msgs_per_subject=per_subject,
            discard=DiscardPolicy.OLD,
            num_replicas=limits.replicas,
            duplicate_window=min(limits.duplicate_window_s, max_age),
            allow_direct=True,
        )

    return [
        data(Group.PRICES, max_age=limits.history_s, per_subject=-1),
        data(Group.MARKET, max_age=limits.history_s, per_subject=-1),
        data(Group.NEWS, max_age=limits.news_history_s, per_subject=1000),
        data(Group.ALERTS, max_age=limits.news_history_s, per_subject=1000),
        StreamConfig(
            name=subjects.chain_stream,
            subjects=[subjects.chains],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=limits.history_s,
            max_bytes=limits.max_bytes,
            max_msgs_per_subject=1,
            discard=DiscardPolicy.OLD,
            num_replicas=limits.replicas,
            duplicate_window=min(limits.duplicate_window_s, limits.history_s),
            allow_direct=True,
        ),
        StreamConfig(
            name=subjects.sessions_stream,
            subjects=[subjects.sessions],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=86_400.0,
            max_bytes=limits.max_bytes,
            num_replicas=limits.replicas,
            duplicate_window=limits.duplicate_window_s,
        ),
    ]


async def ensure_streams(
    js: JetStreamContext, subjects: SubjectCatalog, limits: StreamLimits | None = None
) -> None:
    for config in stream_configs(subjects, limits or StreamLimits()):
        await _until_done(f"stream {config.name}", functools.partial(_ensure_stream, js, config))


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    assert config.name is not None
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        # if another service creates it in the meantime this fails, and the retry updates it
        await js.add_stream(config)
        log.info("stream created", extra={"stream": config.name})
    else:
        await js.update_stream(config)


async def ensure_kv(
    js: JetStreamContext,
    bucket: str,
    *,
    history: int = 1,
    ttl_s: float | None = None,
    replicas: int = 1,
) -> KeyValue:
    """The bucket, created if missing; an existing one gets this ``history``, ``ttl_s`` and
    ``replicas`` if it has others (as :func:`ensure_streams` updates a stream), so a changed
    setting (``PRICEWIRE_NATS_HISTORY_S`` for the edge's subscriptions bucket) takes effect at
    the next start instead of the bucket keeping the values it was created with."""

    async def attempt() -> KeyValue:
        try:
            kv = await js.key_value(bucket)
        except NotFoundError:
            config = KeyValueConfig(bucket=bucket, history=history, ttl=ttl_s, replicas=replicas)
            return await js.create_key_value(config)
        current = (await js.stream_info(f"KV_{bucket}")).config
        have = (current.max_msgs_per_subject, current.max_age or 0.0, current.num_replicas)
        wanted = (history, ttl_s or 0.0, replicas)  # history, TTL, replicas
        if have != wanted:
            await js.update_stream(
                dataclasses.replace(
                    current, max_msgs_per_subject=history, max_age=ttl_s, num_replicas=replicas
                )
            )
            log.info("bucket updated", extra={"bucket": bucket, "from": have, "to": wanted})
        return kv

    return await _until_done(f"bucket {bucket}", attempt)


async def _until_done(what: str, step: Callable[[], Awaitable[T]]) -> T:
    """Retry ``step`` until it succeeds: JetStream is not ready at once on a forming cluster.

    A cluster that is still electing its meta leader answers "stream not found", "no suitable
    peers" or times out for a few seconds; a service keeps trying (and stays not ready) rather
    than giving up, and says so in the log.
    """
    delay = 0.2
    while True:
        try:
            return await step()
        except (NatsError, OSError, TimeoutError) as exc:
            log.warning(
                "JetStream not ready, retrying",
                extra={"what": what, "error": repr(exc), "retry_in_s": round(delay, 2)},
            )
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, 5.0)
