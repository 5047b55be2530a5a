"""The simulator reads the request as the real API does: a key missing from where the API
expects it, an unknown plan in the path, an unknown pair or id in a batch get that API's own
error, with its real status, for the whole request; ids the API would skip are skipped.

:func:`check` is pure: a request and the simulated venue's listing in, either the assets to
answer for or the error :class:`~pricewire_ingest.simulator.render.Answer` out. What each venue
lists comes from the catalog's assets (the ids it names per venue), never from the adapters,
so a request the ingest builds wrong is caught here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..catalog import Asset, Provider
from .render import Answer, auth_error_answer, json_answer

__all__ = ["CRYPTOPANIC_PLANS", "SimRequest", "check", "path_matches"]

#: the plans CryptoPanic's developer API v2 has in its path
CRYPTOPANIC_PLANS = ("developer", "growth", "enterprise")


@dataclass(frozen=True, slots=True)
class SimRequest:
    """What the simulator sees of a request (header names lower-case)."""

    path: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


def path_matches(provider: Provider, path: str) -> bool:
    """The provider's path, with ``{plan}`` one of the API's plans and other placeholders any
    non-empty segment run (DefiLlama's coin list)."""
    expected = provider.endpoint.path.rstrip("/")
    pattern = ""
    for piece in re.split(r"(\{[a-z_]+\})", expected):
        if piece == "{plan}":
            pattern += "(?:" + "|".join(CRYPTOPANIC_PLANS) + ")"
        elif piece.startswith("{"):
            pattern += ".+"
        else:
            pattern += re.escape(piece)
    return re.fullmatch(pattern, path.rstrip("/")) is not None


def _has_key(provider: Provider, request: SimRequest) -> bool:
    auth = provider.auth
    if auth.type in ("none", "path"):
        return True
    if auth.type == "query":
        return bool(request.params.get(auth.name or ""))
    if auth.type in ("header", "apikey_header"):
        if provider.family.startswith("coingecko_"):  # either plan's header
            return bool(
                request.headers.get("x-cg-demo-api-key") or request.headers.get("x-cg-pro-api-key")
            )
        return bool(request.headers.get((auth.name or "").lower()))
    return bool(request.headers.get("authorization"))


# -- what each venue lists: from the catalog's assets ---------------------------------------
def _listing(assets: Sequence[Asset], key: str | None, fmt: str) -> dict[str, Asset]:
    listed: dict[str, Asset] = {}
    for a in assets:
        base = a.id_for(key) if key else a.symbol
        if base:
            listed[fmt.format(base).upper()] = a
    return listed


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


_Check = Callable[[Provider, SimRequest, Sequence[Asset]], "Sequence[Asset] | Answer"]


def _binance(p: Provider, r: SimRequest, assets: Sequence[Asset]) -> Sequence[Asset] | Answer:
    """``symbols=["BTCUSDT",...]`` (or ``symbol=``): one unknown symbol fails the request."""
    listed = _listing(assets, None, "{}USDT") | _listing(assets, None, "{}USD")
    asked: list[Any]
    if "symbols" in r.params:
        try:
            asked = orjson.loads(r.params["symbols"])
        except orjson.JSONDecodeError:
            asked = [None]
        if not isinstance(asked, list) or not asked:
            asked = [None]
    elif "symbol" in r.params:
        asked = [r.params["symbol"]]
    else:
        return assets
    if any(not isinstance(s, str) or s.upper() not in listed for s in asked):
        return json_answer({"code": -1121, "msg": "Invalid symbol."}, 400)
    return _unique([listed[s.upper()] for s in asked])


def _kraken(p: Provider, r: SimRequest, assets: Sequence[Asset]) -> Sequence[Asset] | Answer:
    """``pair=XBTUSD,...``: one unknown pair fails the request (HTTP 200, ``error``)."""
    listed = _listing(assets, "kraken", "{}USD") | _listing(assets, "kraken", "X{}ZUSD")
    asked = _split(r.params.get("pair"))
    if not asked or any(s.upper() not in listed for s in asked):
        return json_answer({"error": ["EQuery:Unknown asset pair"], "result": {}})
    return _unique([listed[s.upper()] for s in asked])


def _skipping(key: str | None, param: str) -> _Check:
    """APIs that answer the ids they know and leave the others out (CoinGecko, Bitfinex,
    CoinCap, CryptoCompare)."""

    def run(p: Provider, r: SimRequest, assets: Sequence[Asset]) -> Sequence[Asset] | Answer:
        if param not in r.params:
            return assets
        listed = _listing(assets, key, "{}")
        return _unique([listed[s.upper()] for s in _split(r.params[param]) if s.upper() in listed])

    return run


def _cmc(p: Provider, r: SimRequest, assets: Sequence[Asset]) -> Sequence[Asset] | Answer:
    """``symbol=BTC,...``: an unknown symbol is HTTP 400 for the whole request."""
    listed = _listing(assets, None, "{}")
    asked = _split(r.params.get("symbol"))
    unknown = [s for s in asked if s.upper() not in listed]
    if unknown or not asked:
        message = f'Invalid value for "symbol": "{",".join(unknown)}"'
        return json_answer({"status": {"error_code": 400, "error_message": message}}, 400)
    return _unique([listed[s.upper()] for s in asked])


def _unique(assets: list[Asset]) -> list[Asset]:
    return list({a.symbol: a for a in assets}.values())


#: family -> how its batch parameter is read
CHECKS: dict[str, _Check] = {
    "binance_24hr": _binance,
    "binance_price": _binance,
    "binance_klines": _binance,
    "kraken_ticker": _kraken,
    "coinmarketcap_quotes": _cmc,
    "coingecko_markets": _skipping("coingecko", "ids"),
    "coingecko_simple": _skipping("coingecko", "ids"),
    "bitfinex_tickers": _skipping("bitfinex", "symbols"),
    "coincap_assets": _skipping("coincap", "ids"),
    "cryptocompare_pricemultifull": _skipping(None, "fsyms"),
}


def check(
    provider: Provider, request: SimRequest, assets: Sequence[Asset]
) -> Sequence[Asset] | Answer:
    """The assets to answer for, or the API's error for the whole request."""
    if provider.auth.required and not _has_key(provider, request):
        return auth_error_answer(provider.family, missing=True)
    run = CHECKS.get(provider.family)
    return run(provider, request, assets) if run else assets
