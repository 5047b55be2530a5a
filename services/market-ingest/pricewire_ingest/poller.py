"""The HTTP side of a poll (httpx): one shared AsyncClient, a total deadline per request, a cap
on answer size. Everything it returns or raises is already in the domain's terms."""

from __future__ import annotations

import asyncio

import httpx

from .adapters import RawResponse, RequestSpec
from .errors import BadResponse, NetworkError, PollTimeout

__all__ = ["HttpFetcher"]


class HttpFetcher:
    """
    >>> fetcher = HttpFetcher(max_connections=32)        # doctest: +SKIP
    >>> raw = await fetcher.fetch(spec, timeout_s=10)    # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        max_connections: int = 32,
        max_body_bytes: int = 16 * 1024 * 1024,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=True,
            max_redirects=5,
            transport=transport,
        )

    async def fetch(self, spec: RequestSpec, *, timeout_s: float) -> RawResponse:
        try:
            # one deadline for the whole exchange: a server trickling bytes cannot hold us
            async with asyncio.timeout(timeout_s):
                request = self.client.build_request(
                    spec.method,
                    spec.url,
                    params=spec.params or None,
                    headers=spec.headers,
                    json=spec.json,
                    timeout=httpx.Timeout(timeout_s),
                )
                response = await self.client.send(request, stream=True)
                try:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self.max_body_bytes:
                            raise BadResponse(f"answer larger than {self.max_body_bytes} bytes")
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise PollTimeout(f"no complete answer within {timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        headers = {k.lower(): v for k, v in response.headers.items()}
        return RawResponse(response.status_code, bytes(body), headers)

    async def aclose(self) -> None:
        await self.client.aclose()
