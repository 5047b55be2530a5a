"""JetStream publishes acknowledged without a task, a future or a timer per message.

``js.publish`` is a NATS request: per message a task (the caller's), a reply token, a future,
``wait_for`` with its timer, and the acknowledgement parsed into a dataclass. During a connect
storm the edge made two of them per client (the ``session_opened`` event and the subscriptions
KV record): about a fifth of its set-up CPU (py-spy, see docs/benchmarks.md).

:class:`AckedPublisher` does what ``PublishAsync`` does in the Go client: every message of one
event-loop turn is published by one coroutine, with a reply subject under one wildcard inbox
``<inbox>.<n>``; one subscription receives every acknowledgement and calls the message's
``done(ok, why)``. A message not acknowledged within ``ack_timeout_s`` (checked by one timer
for all of them) is reported as failed, as is one JetStream refused (no stream: a 503 status;
an API error) or one that could not be sent. Messages go out in the order they were given.

While acknowledgements are outstanding, the next batch waits ``batch_wait_s`` (5 ms) before it
goes: the messages queued meanwhile go out in one write, and their acknowledgements come back
in a few reads. In a connect storm a loop turn holds two or three clients, so batches of one
turn cost the edge about 25 us of JetStream work per client; waiting for a fuller batch
brings that to about 10 (docs/benchmarks.md). A quiet edge, with nothing in flight, still
sends at the end of the turn, so the wait only ever adds to a message's acknowledgement time
under load, and by at most ``batch_wait_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import orjson
from nats.aio.msg import Msg

from pricewire_common.natsconn import NatsLink

__all__ = ["AckedPublisher", "Done"]

log = logging.getLogger("pricewire.edge.jetstream")

#: ``done(ok, why)``: ``why`` is empty when ok, else a short reason (logged by the caller).
Done = Callable[[bool, str], None]


class AckedPublisher:
    """Publishes to JetStream subjects; each message's ``done`` learns whether it was stored."""

    def __init__(self, link: NatsLink, *, ack_timeout_s: float, batch_wait_s: float) -> None:
        self.link = link
        self.ack_timeout_s = ack_timeout_s
        self.batch_wait_s = batch_wait_s
        self._queue: list[tuple[str, bytes, Done]] = []
        self._scheduled = False
        #: batches sent so far (a batch: the messages that went out together)
        self.batches = 0
        self._inbox = ""
        self._next = 0
        # token -> (deadline, done), in publish order: deadlines only grow
        self._outstanding: dict[int, tuple[float, Done]] = {}
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def outstanding(self) -> int:
        """Messages queued or sent whose acknowledgement has not arrived yet."""
        return len(self._queue) + len(self._outstanding)

    def publish(self, subject: str, payload: bytes, done: Done) -> None:
        """Queue ``payload``; it is sent at the end of this event-loop turn (no await here)."""
        self._queue.append((subject, payload, done))
        if not self._scheduled:
            self._scheduled = True
            task = asyncio.ensure_future(self._sender())
            task.add_done_callback(_log_failure)

    async def _sender(self) -> None:
        """One coroutine sends every batch queued meanwhile, in order, then ends."""
        try:
            # the rest of this turn queues too; under load (acknowledgements outstanding),
            # whatever comes in the next batch_wait_s as well
            await asyncio.sleep(self.batch_wait_s if self._outstanding else 0)
            while self._queue:
                batch, self._queue = self._queue, []
                await self._send(batch)
        finally:
            self._scheduled = False

    async def _send(self, batch: list[tuple[str, bytes, Done]]) -> None:
        nc = self.link.nc
        try:
            if not self._inbox:
                inbox = nc.new_inbox()
                await nc.subscribe(f"{inbox}.*", cb=self._on_ack)
                self._inbox = inbox
        except Exception as exc:
            for _, _, done in batch:
                done(False, repr(exc))
            return
        self.batches += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ack_timeout_s
        prefix = self._inbox + "."
        for i, (subject, payload, done) in enumerate(batch):
            self._next += 1
            token = self._next
            self._outstanding[token] = (deadline, done)
            try:
                await nc.publish(subject, payload, reply=prefix + str(token))
            except Exception as exc:  # closed, draining, outbound buffer full...
                self._outstanding.pop(token, None)
                for _, _, later in batch[i:]:
                    later(False, repr(exc))
                break
        if self._outstanding and self._expiry is None:
            self._expiry = loop.call_at(deadline, self._expire)

    async def _on_ack(self, msg: Msg) -> None:
        try:
            token = int(msg.subject.rpartition(".")[2])
        except ValueError:
            return
        entry = self._outstanding.pop(token, None)
        if entry is None:
            return  # counted as failed already (timed out)
        done = entry[1]
        if msg.headers and msg.headers.get("Status"):
            done(False, f"status {msg.headers.get('Status')}")  # 503: no stream for the subject
            return
        try:
            body = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and "error" not in body and "seq" in body:
            done(True, "")
        else:
            done(False, f"refused: {msg.data[:200]!r}")

    def _expire(self) -> None:
        self._expiry = None
        now = asyncio.get_running_loop().time()
        outstanding = self._outstanding
        while outstanding:
            token = next(iter(outstanding))
            deadline, done = outstanding[token]
            if deadline > now:
                self._expiry = asyncio.get_running_loop().call_at(deadline, self._expire)
                return
            del outstanding[token]
            done(False, "no acknowledgement in time")


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("JetStream publish batch failed", exc_info=task.exception())
