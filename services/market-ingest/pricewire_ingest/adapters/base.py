"""What every adapter shares: the request a poll makes, and the checks every answer goes through.

A poll is ``build_request`` -> (I/O) -> :func:`evaluate`. Both ends are pure. :func:`evaluate`
turns a raw answer into :class:`~pricewire_ingest.quotes.PollData` or raises a
:class:`~pricewire_ingest.errors.PollFailure` whose ``outcome`` is what health events report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

import orjson

from pricewire_contracts import FEEDS, Feed

from ..catalog import Asset, Provider
from ..errors import BadResponse, HttpStatusError, PollFailure, RateLimited
from ..quotes import PollData, PriceQuote

__all__ = [
    "Adapter",
    "ParseContext",
    "RawResponse",
    "RequestSpec",
    "as_dict",
    "as_list",
    "build_request",
    "evaluate",
    "feeds_of",
    "opt_float",
    "parse_iso_time",
    "parse_retry_after",
    "price_value",
]

#: Retry-After beyond this is treated as this (a provider asking for a day is not obeyed blindly)
MAX_RETRY_AFTER_S = 3600.0
HTML_START = re.compile(rb"^\s*(<!doctype html|<html|<head|<body)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RequestSpec:
    method: Literal["GET", "POST"]
    url: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  #: lower-case names

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class ParseContext:
    provider_id: str
    provider_name: str
    assets: Sequence[Asset]
    now: float  #: unix seconds when the answer arrived
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_provider(cls, provider: Provider, assets: Sequence[Asset], now: float) -> ParseContext:
        return cls(provider.id, provider.name, assets, now, provider.options)

    def quote(
        self,
        symbol: str,
        price: Any,
        *,
        change_24h: Any = None,
        market_cap: Any = None,
        volume_24h: Any = None,
        observed_at: float | None = None,
    ) -> PriceQuote:
        """A validated quote; a price that is not a finite positive number fails the poll."""
        when = self.now
        # a provider's own timestamp is kept when plausible (not in the future, not absurd)
        if observed_at is not None and 0 < observed_at <= self.now + 60:
            when = min(observed_at, self.now)
        return PriceQuote(
            symbol=symbol,
            price=price_value(price, f"{symbol} price"),
            provider_id=self.provider_id,
            observed_at=when,
            change_24h=opt_float(change_24h),
            market_cap=opt_float(market_cap),
            volume_24h=opt_float(volume_24h),
        )


class Adapter:
    """One API family. Subclasses set ``family`` and implement :meth:`parse_json` (or
    :meth:`parse_body` for non-JSON answers)."""

    family: ClassVar[str]
    #: "json": the answer must be JSON; "body": the adapter reads the raw bytes itself
    body_kind: ClassVar[Literal["json", "body"]] = "json"
    #: the poll must yield at least one tracked price to count as a success
    yields_prices: ClassVar[bool] = False
    #: the key in Asset.ids for ``{ids}`` (None: the symbol itself)
    id_key: ClassVar[str | None] = None
    #: what a successful poll feeds besides prices (``yields_prices`` adds ``prices``); see
    #: :func:`feeds_of`
    feeds: ClassVar[frozenset[Feed]] = frozenset()
    #: HTTP statuses this provider uses for a rate-limit ban, and the wait it imposes in seconds
    #: (Bybit: 403 "access too frequent", wait at least 10 minutes); a Retry-After still wins
    ban_statuses: ClassVar[Mapping[int, float]] = {}

    def pair(self, asset: Asset) -> str | None:
        """The exchange's name for ``asset``'s USD(T) market, or None when it has none."""
        return None

    def request_values(self, assets: Sequence[Asset]) -> dict[str, str]:
        ids = [a.id_for(self.id_key) if self.id_key else a.symbol for a in assets]
        pairs = [p for p in (self.pair(a) for a in assets) if p]
        return {
            "ids": ",".join(i for i in ids if i),
            "symbols": ",".join(a.symbol for a in assets),
            "pairs": ",".join(pairs),
            "pairs_json": orjson.dumps(pairs).decode(),
            "llama_coins": ",".join(c for c in (a.id_for("llama") for a in assets) if c),
        }

    def pair_index(self, assets: Sequence[Asset]) -> dict[str, str]:
        """Exchange pair name (upper-case) -> our symbol."""
        index: dict[str, str] = {}
        for a in assets:
            pair = self.pair(a)
            if pair:
                index[pair.upper()] = a.symbol
        return index

    def error_in(self, data: Any) -> PollFailure | None:
        """A provider-specific error carried in a decoded body (any HTTP status), if any."""
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        raise NotImplementedError(self.family)

    def parse_body(self, response: RawResponse, ctx: ParseContext) -> PollData:
        raise NotImplementedError(self.family)


def feeds_of(adapter: Adapter) -> list[Feed]:
    """What a provider polled with ``adapter`` feeds, in :data:`FEEDS` order: its declared
    ``feeds``, ``prices`` when it must yield prices, else only its availability (``probe``).
    """
    feeds = set(adapter.feeds) | ({"prices"} if adapter.yields_prices else set())
    return [f for f in FEEDS if f in feeds] or ["probe"]


def build_request(
    provider: Provider,
    adapter: Adapter,
    assets: Sequence[Asset],
    *,
    key: str | None = None,
    base_url_override: str | None = None,
    user_agent: str = "pricewire-ingest",
) -> RequestSpec:
    """The request one poll of ``provider`` makes.

    With ``base_url_override`` the provider's base URL becomes ``<override>/<provider id>``:
    the simulator answers there, and every other step is the live code path.
    """
    values = adapter.request_values(assets)

    def fill(text: str) -> str:
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        return text

    base = provider.base_url
    if base_url_override:
        base = f"{base_url_override.rstrip('/')}/{provider.id}"
    elif "{key}" in base:
        base = base.replace("{key}", key or "")
    # a plan named in the path (CryptoPanic's /api/<plan>/v2): the simulator sees it too
    path = provider.endpoint.path.replace("{plan}", provider.options.get("plan", ""))
    base = base.replace("{plan}", provider.options.get("plan", ""))
    url = base + fill(path)
    params = {k: fill(v) for k, v in provider.endpoint.params.items()}
    headers = {"User-Agent": user_agent, "Accept": "application/json, */*;q=0.5"}
    auth = provider.auth
    if key:
        if auth.type == "query" and auth.name:
            params[auth.name] = key
        elif auth.type == "header" and auth.name:
            headers[auth.name] = key
        elif auth.type == "apikey_header" and auth.name:
            headers[auth.name] = f"Apikey {key}"
        elif auth.type == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        elif auth.type == "basic":
            import base64

            headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    body = provider.endpoint.body
    if provider.endpoint.method == "POST" and body is None:
        body = rpc_body(provider)
    return RequestSpec(provider.endpoint.method, url, params, headers, body)


def rpc_body(provider: Provider) -> dict[str, Any]:
    """The JSON-RPC call a node's poll makes: Solana's slot; an EVM node's latest block
    header (``false``: transaction hashes only), whose number, timestamp and base fee are
    the chain's head, block time and gas in one call."""
    if provider.family == "solana_rpc":
        return {"jsonrpc": "2.0", "id": 1, "method": "getSlot", "params": []}
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "eth_getBlockByNumber",
        "params": ["latest", False],
    }


def evaluate(adapter: Adapter, response: RawResponse, ctx: ParseContext) -> PollData:
    """Classify and parse one answer. Raises :class:`PollFailure` for anything but data."""
    if response.status in (429, 418):  # 418: Binance's "banned for ignoring 429"
        raise RateLimited(
            f"HTTP {response.status}",
            parse_retry_after(response.header("retry-after"), ctx.now),
        )
    ban_s = adapter.ban_statuses.get(response.status)
    if ban_s is not None:
        waited = parse_retry_after(response.header("retry-after"), ctx.now)
        raise RateLimited(
            f"HTTP {response.status}: {_snippet(response.body)}",
            max(waited or 0.0, min(ban_s, MAX_RETRY_AFTER_S)),
        )
    decoded: Any = None
    decode_error: str | None = None
    if adapter.body_kind == "json":
        decoded, decode_error = _decode(response.body)
    if not 200 <= response.status < 300:
        failure = adapter.error_in(decoded) if decoded is not None else None
        if isinstance(failure, RateLimited):
            raise failure
        raise HttpStatusError(response.status, _snippet(response.body))
    if adapter.body_kind == "body":
        data = adapter.parse_body(response, ctx)
    else:
        if decode_error is not None:
            raise BadResponse(decode_error)
        failure = adapter.error_in(decoded)
        if failure is not None:
            raise failure
        try:
            data = adapter.parse_json(decoded, ctx)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            # a shape we did not expect is the provider's fault, never a crash of ours
            raise BadResponse(f"unexpected shape: {type(exc).__name__}: {exc}") from exc
    if adapter.yields_prices and not data.quotes:
        raise BadResponse("no tracked symbol in the answer")
    return data


def _decode(body: bytes) -> tuple[Any, str | None]:
    if not body.strip():
        return None, "empty body"
    if HTML_START.match(body[:512]):
        return None, "an HTML page instead of JSON"
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError as exc:
        return None, f"invalid JSON (truncated or garbage): {exc}"


def _snippet(body: bytes) -> str:
    if HTML_START.match(body[:512]):
        return "HTML error page"
    return body[:120].decode("utf-8", "replace").strip()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date).

    >>> parse_retry_after("30", 0)
    30.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", 0)
    60.0
    >>> parse_retry_after("soon", 0) is None
    True
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def price_value(raw: Any, what: str = "price") -> float:
    """A finite, positive float, or :class:`BadResponse`.

    >>> price_value("43250.5")
    43250.5
    >>> price_value("0")
    Traceback (most recent call last):
    ...
    pricewire_ingest.errors.BadResponse: price is not a positive finite number: '0'
    """
    value = _number(raw)
    if value is None or not value > 0:
        raise BadResponse(f"{what} is not a positive finite number: {raw!r}")
    return value


def opt_float(raw: Any) -> float | None:
    """A finite float or None (for secondary fields: change, market cap, volume)."""
    return _number(raw)


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None


def as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadResponse(f"{what}: expected an object, got {type(value).__name__}")
    return value


def as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadResponse(f"{what}: expected a list, got {type(value).__name__}")
    return value


def parse_iso_time(value: Any) -> float | None:
    """Unix seconds from an ISO 8601 string (``Z`` or an offset), else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
