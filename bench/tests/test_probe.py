"""The probe's WebSocket framing: masked client frames out, unmasked server frames in."""

from __future__ import annotations

import pytest

from bench.probe import OP_BINARY, OP_CLOSE, OP_TEXT, client_frame, parse_frames


def _server_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes([0x80 | opcode, n]) + payload
    if n < 1 << 16:
        return bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big") + payload
    return bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big") + payload


def _unmask(frame: bytes) -> tuple[int, bytes]:
    opcode = frame[0] & 0x0F
    assert frame[1] & 0x80, "client frames must be masked"
    n, pos = frame[1] & 0x7F, 2
    if n == 126:
        n, pos = int.from_bytes(frame[2:4], "big"), 4
    elif n == 127:
        n, pos = int.from_bytes(frame[2:10], "big"), 10
    mask, body = frame[pos : pos + 4], frame[pos + 4 :]
    assert len(body) == n
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(body))


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536])
def test_client_frames_unmask_to_the_payload(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    assert _unmask(client_frame(OP_BINARY, payload)) == (OP_BINARY, payload)


@pytest.mark.parametrize("size", [0, 5, 125, 126, 300, 70_000])
def test_server_frames_come_out_whole_however_the_bytes_are_cut(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    stream = _server_frame(OP_TEXT, payload) + _server_frame(OP_CLOSE, b"\x03\xf4")
    for cut in (1, 2, 3, 9, len(stream) // 2, len(stream) - 1):
        buf = bytearray(stream[:cut])
        got = parse_frames(buf)
        buf += stream[cut:]
        got += parse_frames(buf)
        assert got == [(OP_TEXT, payload), (OP_CLOSE, b"\x03\xf4")]
        assert buf == bytearray()
