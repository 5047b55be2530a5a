"""The HTTP side of a poll (httpx.MockTransport in place of the network)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pricewire_ingest.adapters import RequestSpec
from pricewire_ingest.errors import BadResponse, NetworkError, PollTimeout
from pricewire_ingest.poller import HttpFetcher


async def test_answer_status_headers_and_body_pass_through() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(429, headers={"Retry-After": "7"}, content=b'{"error":"slow down"}')

    fetcher = HttpFetcher(transport=httpx.MockTransport(handler))
    spec = RequestSpec("GET", "https://api.example.com/x", {"ids": "a,b"}, {"X-Key": "k"})
    raw = await fetcher.fetch(spec, timeout_s=5)
    await fetcher.aclose()
    assert (raw.status, raw.header("Retry-After"), raw.body) == (429, "7", b'{"error":"slow down"}')
    assert seen[0].url.params["ids"] == "a,b"
    assert seen[0].headers["x-key"] == "k"


async def test_json_rpc_body_is_posted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=request.content)

    fetcher = HttpFetcher(transport=httpx.MockTransport(handler))
    raw = await fetcher.fetch(
        RequestSpec("POST", "https://rpc.example", json={"method": "eth_blockNumber"}), timeout_s=5
    )
    await fetcher.aclose()
    assert raw.body == b'{"method":"eth_blockNumber"}'


async def test_slow_answer_is_a_timeout() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    fetcher = HttpFetcher(transport=httpx.MockTransport(handler))
    with pytest.raises(PollTimeout, match=r"within 0\.2 s"):
        await fetcher.fetch(RequestSpec("GET", "https://slow.example"), timeout_s=0.2)
    await fetcher.aclose()


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadError("reset"),
    ],
)
async def test_transport_errors_are_network_errors(error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    fetcher = HttpFetcher(transport=httpx.MockTransport(handler))
    with pytest.raises(NetworkError):
        await fetcher.fetch(RequestSpec("GET", "https://down.example"), timeout_s=5)
    await fetcher.aclose()


async def test_an_oversized_answer_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 5000)

    fetcher = HttpFetcher(transport=httpx.MockTransport(handler), max_body_bytes=1000)
    with pytest.raises(BadResponse, match="larger than 1000 bytes"):
        await fetcher.fetch(RequestSpec("GET", "https://big.example"), timeout_s=5)
    await fetcher.aclose()
