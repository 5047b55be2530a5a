"""What every bench process shares: the open-files limit, logging, and the command loop."""

from __future__ import annotations

import asyncio
import logging
import resource
import sys
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ValidationError

from bench.protocol import Command, Done, Failed, Quit, command_adapter

log = logging.getLogger("bench.agent")


def raise_nofile_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit: 10,000 sockets need more than the usual 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def setup_agent_logging(name: str) -> None:
    # stdout carries the protocol, so diagnostics go to stderr (the orchestrator files it)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
    )


def reply(message: BaseModel) -> None:
    sys.stdout.buffer.write(message.model_dump_json().encode() + b"\n")
    sys.stdout.buffer.flush()


async def serve(handle: Callable[[Command], Awaitable[BaseModel]]) -> None:
    """Answer commands read from stdin, one at a time, until ``quit`` or end of input."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    reply(Done())  # ready: imports done, loop running
    while True:
        line = await reader.readline()
        if not line:  # the orchestrator is gone
            return
        try:
            command = command_adapter.validate_json(line)
        except ValidationError as exc:
            reply(Failed(error=f"bad command: {exc.errors()[:1]}"))
            continue
        if isinstance(command, Quit):
            reply(Done())
            return
        try:
            answer = await handle(command)
        except Exception as exc:
            log.exception("command failed", extra={"cmd": command.cmd})
            answer = Failed(error=f"{type(exc).__name__}: {exc}")
        reply(answer)
