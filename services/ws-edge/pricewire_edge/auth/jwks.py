"""JWKS keys fetched with httpx and cached: :class:`JwksAuthenticator`, the only I/O of auth."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from .errors import AuthConfigError, KeysUnavailable, UnknownKey
from .keys import parse_jwks
from .principal import Principal
from .settings import AuthSettings
from .verifier import TokenVerifier

if TYPE_CHECKING:  # the pure part never needs httpx; only the JWKS fetcher does
    import httpx

__all__ = ["MAX_JWKS_BYTES", "JwksAuthenticator"]

log = logging.getLogger("pricewire.edge.auth")

#: The largest JWKS document accepted (real ones are a few KiB).
MAX_JWKS_BYTES = 1024 * 1024


class JwksAuthenticator:
    """Keys from a JWKS URL, fetched with httpx and cached.

    The cache is refetched when older than ``jwks_cache_ttl_s`` and when a token names an
    unknown ``kid`` (key rotation), but never more than once per
    ``jwks_min_refresh_interval_s``, so clients sending made-up ``kid`` values cannot turn the
    edge into a load generator against the identity provider. Concurrent refreshes are
    coalesced; a failed fetch keeps the previous keys.
    """

    def __init__(
        self,
        settings: AuthSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.jwks_url is None:
            raise AuthConfigError("JwksAuthenticator needs jwks_url")
        self.settings = settings
        self.url = str(settings.jwks_url)
        self.verifier = TokenVerifier(settings)
        self._client = client
        self._own_client = client is None
        self._clock = clock
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._generation = 0  # completed fetch attempts; tells a waiting task one just ran
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def start(self) -> None:
        """Warm the cache; a failure is logged and retried on the first token."""
        await self._refresh(force=True)

    async def verify(self, token: str) -> Principal:
        if self._stale():
            await self._refresh(force=False)
        try:
            return self.verifier.verify(token)
        except UnknownKey:
            if not self.verifier.key_ids:
                raise KeysUnavailable() from None
            # A kid we do not know may be a key the provider just rotated in.
            if self.verifier.key_id(token) is None or not await self._refresh(force=False):
                raise
        return self.verifier.verify(token)

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _stale(self) -> bool:
        return (
            self._fetched_at is None
            or self._clock() - self._fetched_at >= self.settings.jwks_cache_ttl_s
        )

    async def _refresh(self, *, force: bool) -> bool:
        """Fetch the JWKS unless rate-limited; True if a fetch (this one or a concurrent one) ran."""
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                return True  # another task fetched while this one waited: use its result
            now = self._clock()
            if (
                not force
                and self._attempted_at is not None
                and now - self._attempted_at < self.settings.jwks_min_refresh_interval_s
            ):
                return False
            self._attempted_at = now
            self.fetches += 1
            try:
                keys = await self._fetch()
            finally:
                self._generation += 1
            if keys is None:
                return False
            self.verifier.replace_keys(keys)
            self._fetched_at = now
            return True

    async def _fetch(self) -> dict[str | None, Any] | None:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.settings.jwks_timeout_s, follow_redirects=False
            )
        try:
            async with self._client.stream(
                "GET", self.url, headers={"Accept": "application/json"}
            ) as response:
                if response.status_code != 200:
                    log.warning(
                        "jwks fetch refused",
                        extra={"url": self.url, "status": response.status_code},
                    )
                    return None
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        log.warning("jwks document too large", extra={"url": self.url})
                        return None
        except httpx.HTTPError as exc:
            log.warning("jwks fetch failed", extra={"url": self.url, "error": type(exc).__name__})
            return None
        try:
            keys = parse_jwks(bytes(body), self.verifier.algorithm)
        except (ValueError, orjson.JSONDecodeError):
            log.warning("jwks document invalid", extra={"url": self.url})
            return None
        if not keys:
            log.warning(
                "jwks has no usable key",
                extra={"url": self.url, "algorithm": self.verifier.algorithm},
            )
            return None
        log.info("jwks fetched", extra={"url": self.url, "keys": len(keys)})
        return keys
