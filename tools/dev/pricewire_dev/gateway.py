"""The dev gateway: one origin (``http://localhost:8000``) in front of the services.

The guide's clients expect a single host: the page, ``/ws`` and ``/api/*`` all on port 8000.
Under ``make run`` every service listens on its own port, so the launcher starts this gateway
in-process on ``--port``: ``/api``, ``/docs``, ``/redoc`` and ``/openapi.json`` go to
session-registry, everything else (``/ws`` upgrades, static files, ``/health``, ``/ready``,
``/metrics``) to ws-edge. The decisions live in :mod:`pricewire_dev.proxy_core`.

This is a development tool, not a production proxy: in Kubernetes the Ingress does this job
(same routes, in ``k8s/``), and in docker-compose a gateway container may too.

How it forwards: each client request is read (head parsed, body framed by Content-Length or
chunked), sent on a fresh upstream connection with ``Connection: close``, and the response is
relayed with its own framing, so the client's connection stays alive for the next request
(a page with many assets, or a ``fetch`` POST, reuses it). Request body and response run
concurrently, which makes ``Expect: 100-continue`` work. A WebSocket upgrade that the upstream
accepts with 101 becomes a byte pipe in both directions until either side closes.

A client gets ``handshake_timeout_s`` (the edge's ``PRICEWIRE_LIMITS__HANDSHAKE_TIMEOUT_S``
under ``make run``) to send each request head, the first one from the moment it connects;
past it the gateway answers 408 and closes, so half-sent requests cannot pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import BadRequest, PortInUse, ProxyError
from .proxy_core import (
    BodyFraming,
    RequestHead,
    Upstream,
    error_response,
    parse_chunk_size,
    parse_request_head,
    parse_response_head,
    request_framing,
    response_framing,
    rewrite_request_head,
    rewrite_response_head,
    route,
)

__all__ = ["Gateway", "UpstreamAddress"]

log = logging.getLogger(__name__)

_HEAD_END = b"\r\n\r\n"
_CHUNK = 64 * 1024
# After one direction of a WebSocket pipe ends, the other gets this long to finish its
# closing handshake before both sockets close.
_PIPE_LINGER_S = 5.0
# An upstream that answered before reading the whole request body (a 404 on a POST, an
# unused Expect: 100-continue) gets this long before the client connection is dropped.
_UPLOAD_LINGER_S = 1.0
_STREAM_ERRORS = (
    OSError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    ProxyError,
)


@dataclass(frozen=True, slots=True)
class UpstreamAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(slots=True)
class _Exchange:
    """One request's progress: whether anything of the response reached the client yet."""

    head: RequestHead
    upstream: Upstream
    reader: asyncio.StreamReader = field(repr=False)
    writer: asyncio.StreamWriter = field(repr=False)
    client_ip: str
    status: int | None = None
    response_started: bool = False
    upload: asyncio.Task[None] | None = field(default=None, repr=False)


async def _copy_exact(src: asyncio.StreamReader, dst: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        data = await src.read(min(_CHUNK, n))
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        dst.write(data)
        n -= len(data)
        await dst.drain()


async def _copy_body(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, framing: BodyFraming
) -> None:
    """Relay one body byte for byte, reading exactly as far as its framing says."""
    if framing.kind == "length":
        await _copy_exact(src, dst, framing.length)
    elif framing.kind == "chunked":
        while True:
            line = await src.readuntil(b"\r\n")
            size = parse_chunk_size(line)
            dst.write(line)
            if size == 0:
                # trailer fields, then the empty line that ends the message
                while True:
                    line = await src.readuntil(b"\r\n")
                    dst.write(line)
                    if line == b"\r\n":
                        break
                await dst.drain()
                return
            await _copy_exact(src, dst, size + 2)  # chunk data and its CRLF
    elif framing.kind == "until_close":
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()
    finally:
        # pass the half-close on, so the peer can finish its closing handshake
        with contextlib.suppress(OSError, RuntimeError):
            if dst.can_write_eof() and not dst.is_closing():
                dst.write_eof()


async def _tunnel(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Bytes both ways after a 101, until one side closes and the other follows."""
    directions = {
        asyncio.create_task(_pipe(reader, up_writer)),
        asyncio.create_task(_pipe(up_reader, writer)),
    }
    try:
        _, pending = await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending, timeout=_PIPE_LINGER_S)
    finally:
        for task in directions:
            task.cancel()
        await asyncio.gather(*directions, return_exceptions=True)


def _client_ip(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "unknown"


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()


class Gateway:
    """Listen on ``host:port`` and forward every request to ws-edge or session-registry.

    Usage::

        gateway = Gateway({Upstream.EDGE: UpstreamAddress("127.0.0.1", 8101),
                           Upstream.REGISTRY: UpstreamAddress("127.0.0.1", 8102)}, port=8000)
        await gateway.start()
        ...
        await gateway.close()
    """

    def __init__(
        self,
        upstreams: Mapping[Upstream, UpstreamAddress],
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        connect_timeout_s: float = 5.0,
        head_limit_bytes: int = 64 * 1024,
        handshake_timeout_s: float = 10.0,
    ) -> None:
        self.upstreams = dict(upstreams)
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self.head_limit_bytes = head_limit_bytes
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, self.host, self.port, limit=self.head_limit_bytes
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {self.port} on {self.host} is in use (another `make run`?); "
                    "choose another with PORT=... or --port"
                ) from exc
            raise
        # port=0 asks for any free port; report the one we got
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("gateway listening", extra={"address": f"{self.host}:{self.port}"})

    def stop_accepting(self) -> None:
        """Refuse new connections; open ones (WebSockets) stay until :meth:`close`."""
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        self.stop_accepting()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        client_ip = _client_ip(writer)
        try:
            while await self._one_request(reader, writer, client_ip):
                pass
        except _STREAM_ERRORS as exc:
            log.debug("client connection ended", extra={"client": client_ip, "reason": repr(exc)})
        except asyncio.CancelledError:
            # close() cancels connections. Ending normally matters: on Python 3.11 the
            # stream machinery logs a cancelled connection task as an error.
            pass
        except Exception:  # a bug here must not take the gateway down with it
            log.exception("gateway connection failed", extra={"client": client_ip})
        finally:
            self._connections.discard(task)
            await _close(writer)

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_ip: str
    ) -> bool:
        """Forward one request; True when the client connection may carry another."""
        try:
            raw = await asyncio.wait_for(reader.readuntil(_HEAD_END), self.handshake_timeout_s)
        except TimeoutError:
            # a request head not sent in time (or an idle keep-alive connection): 408, close
            writer.write(error_response(408, "request not completed in time"))
            await writer.drain()
            return False
        except asyncio.IncompleteReadError:
            return False  # the client closed between requests: the normal end of keep-alive
        except asyncio.LimitOverrunError:
            writer.write(error_response(431, "request head too large"))
            await writer.drain()
            return False
        try:
            head = parse_request_head(raw)
        except BadRequest as exc:
            writer.write(error_response(exc.status, str(exc)))
            await writer.drain()
            return False
        exchange = _Exchange(
            head=head,
            upstream=route(head.target),
            reader=reader,
            writer=writer,
            client_ip=client_ip,
        )
        keep_alive = await self._forward(exchange)
        log.debug(
            "proxied",
            extra={
                "method": head.method,
                "path": head.path,
                "upstream": str(exchange.upstream),
                "status": exchange.status,
            },
        )
        return keep_alive

    async def _forward(self, exchange: _Exchange) -> bool:
        writer = exchange.writer
        address = self.upstreams[exchange.upstream]
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(address.host, address.port, limit=self.head_limit_bytes),
                self.connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
            log.warning(
                "upstream unreachable",
                extra={"upstream": str(exchange.upstream), "address": str(address)},
            )
            exchange.status = 502
            writer.write(
                error_response(
                    502,
                    f"{exchange.upstream} is not reachable at {address} ({reason}). "
                    "Is it running? See the launcher's output.",
                )
            )
            await writer.drain()
            return False
        try:
            return await self._exchange(exchange, up_reader, up_writer)
        finally:
            await _close(up_writer)

    async def _exchange(
        self,
        exchange: _Exchange,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        head, writer = exchange.head, exchange.writer
        up_writer.write(rewrite_request_head(head, client_ip=exchange.client_ip))
        upload = asyncio.create_task(_copy_body(exchange.reader, up_writer, request_framing(head)))
        exchange.upload = upload
        relay = asyncio.create_task(self._relay_response(exchange, up_reader, up_writer))
        try:
            # The upload may fail (client gone mid-body) while the upstream still waits for
            # the rest: then the relay would wait forever, so watch both.
            waiting: set[asyncio.Future[Any]] = {relay, upload}
            while not relay.done():
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                failure = upload.exception() if upload in done else None
                if failure is not None and not relay.done():
                    raise failure
            try:
                keep_alive = relay.result()
            except _STREAM_ERRORS as exc:
                if exchange.response_started:
                    raise
                log.warning(
                    "upstream failed before answering",
                    extra={"upstream": str(exchange.upstream), "reason": repr(exc)},
                )
                exchange.status = 502
                what = (
                    f"answered with something other than HTTP ({exc})"
                    if isinstance(exc, ProxyError)
                    else "closed without answering"
                )
                writer.write(error_response(502, f"{exchange.upstream} {what}"))
                await writer.drain()
                return False
            if not upload.done():
                await asyncio.wait({upload}, timeout=_UPLOAD_LINGER_S)
            if not upload.done() or upload.exception() is not None:
                # the rest of the request body is somewhere in the client's stream: the
                # next request cannot be found, so this connection ends here
                return False
            return keep_alive
        finally:
            for task in (relay, upload):
                if not task.done():
                    task.cancel()
            # gathered so that no task's exception is logged as never retrieved
            await asyncio.gather(relay, upload, return_exceptions=True)

    async def _relay_response(
        self,
        exchange: _Exchange,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        head, writer = exchange.head, exchange.writer
        while True:
            response = parse_response_head(await up_reader.readuntil(_HEAD_END))
            exchange.status = response.status
            if response.status == 101 and head.is_upgrade:
                writer.write(rewrite_response_head(response, keep_alive=False))
                exchange.response_started = True
                await writer.drain()
                assert exchange.upload is not None
                await exchange.upload
                await _tunnel(exchange.reader, writer, up_reader, up_writer)
                return False
            if response.status >= 200:
                break
            # interim responses (100 Continue, 103 Early Hints) go on as they are
            writer.write(rewrite_response_head(response, keep_alive=True))
            await writer.drain()
        framing = response_framing(response, request_method=head.method)
        # a body that ends with the connection can only end this client connection too
        keep_alive = head.keep_alive and not head.is_upgrade and framing.kind != "until_close"
        writer.write(rewrite_response_head(response, keep_alive=keep_alive))
        exchange.response_started = True
        await _copy_body(up_reader, writer, framing)
        await writer.drain()
        return keep_alive
