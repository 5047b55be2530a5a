"""Price adapters as data: one :class:`QuoteSpec` row per provider, read by one
:class:`SpecAdapter`.

A spec names where the rows are, which field names the market (a pair or a coin id), and which
fields hold the price, 24 h change, volume, market cap and time. A field is a key in the row
(a dotted path for nested objects), or a small getter built by :func:`fraction`,
:func:`change_vs`, :func:`notional`, :func:`ms`, :func:`secs` or :func:`body_ms`. The error a
provider puts in a body is an :class:`ErrorRule` (or a hand-written function). A provider whose
answer is not a list or map of rows names its own ``parse`` (the escape hatch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from ..catalog import Asset
from ..errors import BadResponse, PollFailure, RateLimited
from ..quotes import PollData, PriceQuote
from .base import Adapter, ParseContext, as_dict, as_list, opt_float, parse_iso_time

__all__ = [
    "ErrorRule",
    "QuoteSpec",
    "SpecAdapter",
    "adapter_class",
    "body_ms",
    "change_vs",
    "either",
    "fraction",
    "iso",
    "ms",
    "notional",
    "rate_words",
    "secs",
]

Row = Mapping[str, Any]
#: a computed field: (row, whole decoded body) -> raw value
Getter = Callable[[Row, Any], Any]
#: a field: a key (dotted for nested objects) or a getter
Field = str | Getter | None
ErrorCheck = Callable[[Any], PollFailure | None]
Parse = Callable[["SpecAdapter", Any, ParseContext], PollData]


def rate_words(text: str) -> bool:
    """Whether an error message speaks of a rate limit."""
    lowered = text.lower()
    return any(w in lowered for w in ("rate limit", "too many", "ratelimit", "exceeded"))


def dig(value: Any, path: str) -> Any:
    """``value["a"]["b"]`` for ``"a.b"``, None where a step is missing or not an object."""
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def _ms(value: Any) -> float | None:
    raw = opt_float(value)
    return raw / 1000 if raw else None


def fraction(key: str) -> Getter:
    """A 24 h change given as a fraction (0.0123), in percent (1.23)."""

    def get(row: Row, body: Any) -> float | None:
        value = opt_float(dig(row, key))
        return None if value is None else value * 100

    return get


def change_vs(last: str, open_: str) -> Getter:
    """The 24 h change in percent from the last price and the price 24 h ago."""

    def get(row: Row, body: Any) -> float | None:
        now, then = opt_float(dig(row, last)), opt_float(dig(row, open_))
        return (now / then - 1) * 100 if now and then else None

    return get


def notional(price: str, quantity: str) -> Getter:
    """A volume in USD from one in coins and the price."""

    def get(row: Row, body: Any) -> float | None:
        p, q = opt_float(dig(row, price)), opt_float(dig(row, quantity))
        return p * q if p and q else None

    return get


def ms(key: str) -> Getter:
    """A time in milliseconds in the row."""
    return lambda row, body: _ms(dig(row, key))


def body_ms(path: str) -> Getter:
    """A time in milliseconds for the whole answer (``"time"``, ``"data.time"``)."""
    return lambda row, body: _ms(dig(body, path))


def iso(key: str) -> Getter:
    """An ISO 8601 time in the row."""
    return lambda row, body: parse_iso_time(dig(row, key))


def either(first: str, second: str) -> Getter:
    """The first field, or the second where the first is missing, zero or empty."""
    return lambda row, body: dig(row, first) or dig(row, second)


def secs(key: str) -> Getter:
    """A time in seconds in the row."""
    return lambda row, body: opt_float(dig(row, key))


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """The error a provider puts in a JSON object: ``{"code": -1121, "msg": "Invalid symbol."}``.

    The body is an error when every key of ``present`` is there, or ``flag`` (key, value)
    matches, or the ``code`` differs from all of ``ok`` (compared as text when ``text``; a missing
    code is the first of ``ok``). The message is the ``message`` keys' values joined by ``": "``;
    a code in ``rate`` (or, with ``words``, a message speaking of a limit) is a rate limit.
    """

    code: str
    message: tuple[str, ...]
    ok: tuple[Any, ...] = ()
    text: bool = False
    present: tuple[str, ...] = ()
    flag: tuple[str, Any] | None = None
    rate: tuple[Any, ...] = ()
    words: bool = False

    def __call__(self, data: Any) -> PollFailure | None:
        if not isinstance(data, dict) or not self._failed(data):
            return None
        message = ": ".join(str(data.get(k)) for k in self.message)
        if data.get(self.code) in self.rate or (self.words and rate_words(message)):
            return RateLimited(message)
        return BadResponse(message)

    def _failed(self, data: dict[str, Any]) -> bool:
        if self.present:
            return all(k in data for k in self.present)
        if self.flag is not None:
            return bool(data.get(self.flag[0]) == self.flag[1])
        code = data.get(self.code, self.ok[0])
        return (str(code) if self.text else code) not in self.ok


@dataclass(frozen=True, slots=True)
class QuoteSpec:
    """One price provider's answer, as data (see the module doc)."""

    family: str
    doc: str
    #: path from the body to the rows (a list, or an object keyed by market); () is the body
    rows: tuple[str, ...] = ()
    #: the row field naming the market; None: the rows are an object keyed by market
    symbol: str | None = "symbol"
    price: Field = "price"
    change: Field = None
    volume: Field = None
    cap: Field = None
    observed: Field = None
    error: ErrorCheck | None = None
    #: the market name for an asset; ``{s}`` the base (Asset.ids[pair_key] or the symbol)
    pair: str = "{s}USDT"
    pair_key: str | None = None
    #: only assets with an Asset.ids[pair_key] have a market here
    pair_required: bool = False
    #: markets are matched on Asset.ids[match] (None: the pair name, any case; "symbol": ours)
    match: str | None = None
    #: ids are compared as text whatever their type (CoinLore); else a list or object fails
    loose_ids: bool = False
    id_key: str | None = None
    #: with no quote from the pairs, the same rows matched on this pair format (Binance.US)
    fallback_pair: str | None = None
    #: a row counts only with this field (a dotted path) present
    need: str | None = None
    #: the row field whose text names the quote (Coinpaprika, CoinCap), instead of our symbol
    label: str | None = None
    #: a market's row may be a list of rows (CoinMarketCap v2): its first counts
    unwrap: bool = False
    #: the answer is one row (at ``rows``), for the coin its ``symbol`` field names
    single: bool = False
    #: (field, accepted values): the quote currency a single row must be in
    currency: tuple[str, tuple[str, ...]] | None = None
    ban_statuses: Mapping[int, float] = field(default_factory=dict)
    #: the escape hatch: an answer that is not rows
    parse: Parse | None = None


class SpecAdapter(Adapter):
    """The adapter every :class:`QuoteSpec` shares."""

    spec: ClassVar[QuoteSpec]
    yields_prices: ClassVar[bool] = True

    def pair(self, asset: Asset) -> str | None:
        s = self.spec
        base = asset.id_for(s.pair_key) if s.pair_key else None
        if s.pair_required and not base:
            return None
        base = base or asset.symbol
        return s.pair.format(s=base, lower=base.lower())

    def error_in(self, data: Any) -> PollFailure | None:
        return self.spec.error(data) if self.spec.error else None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        s = self.spec
        if s.parse is not None:
            return s.parse(self, data, ctx)
        if s.single:
            return self.one(data, ctx)
        rows = rows_at(data, s.rows, keyed=s.symbol is None)
        quotes = self.match(data, rows, ctx, self.index(ctx))
        if not quotes and s.fallback_pair:
            index = {s.fallback_pair.format(s=a.symbol): a.symbol for a in ctx.assets}
            quotes = self.match(data, rows, ctx, index, fields=False)
        return PollData(quotes=quotes, items=len(rows))

    def one(self, data: Any, ctx: ParseContext) -> PollData:
        s = self.spec
        row = rows_at(data, s.rows, keyed=True)
        if s.currency and row.get(s.currency[0]) not in s.currency[1]:
            raise BadResponse(f"unexpected currency {row.get(s.currency[0])!r}")
        symbol = str(row.get(s.symbol or "symbol", "")).upper()
        if symbol not in {a.symbol for a in ctx.assets}:
            return PollData()
        return PollData(quotes=(self.quote(ctx, symbol, row, data),), items=1)

    def index(self, ctx: ParseContext) -> dict[str, str]:
        """Market name as the answer spells it -> our symbol."""
        match = self.spec.match
        if match is None:
            return self.pair_index(ctx.assets)
        if match == "symbol":
            return {a.symbol: a.symbol for a in ctx.assets}
        return {i: a.symbol for a in ctx.assets if (i := a.id_for(match))}

    def match(
        self,
        body: Any,
        rows: list[Any] | dict[str, Any],
        ctx: ParseContext,
        index: Mapping[str, str],
        *,
        fields: bool = True,
    ) -> tuple[PriceQuote, ...]:
        s = self.spec
        found: list[tuple[str | None, Any]]
        if isinstance(rows, dict):
            found = [(symbol, rows.get(name)) for name, symbol in index.items()]
            if s.unwrap:
                found = [(sym, r[0] if isinstance(r, list) and r else r) for sym, r in found]
        else:
            found = [(index.get(self.name_of(r)), r) for r in rows if isinstance(r, dict)]
        return tuple(
            self.quote(ctx, symbol, row, body) if fields else ctx.quote(symbol, row.get("price"))
            for symbol, row in found
            if symbol and isinstance(row, dict) and (s.need is None or _has(row, s.need))
        )

    def name_of(self, row: Row) -> str:
        """The market a row is for: a pair (any case), or an id, which must be a scalar."""
        name = row.get(self.spec.symbol or "symbol", "")
        if self.spec.match is None:
            return str(name).upper()
        if isinstance(name, list | dict) and not self.spec.loose_ids:
            raise BadResponse(f"{self.spec.symbol}: expected a name, got {type(name).__name__}")
        return str(name)

    def quote(self, ctx: ParseContext, symbol: str, row: Row, body: Any) -> PriceQuote:
        s = self.spec
        return ctx.quote(
            str(row[s.label]) if s.label else symbol,
            _value(s.price, row, body),
            change_24h=_value(s.change, row, body),
            market_cap=_value(s.cap, row, body),
            volume_24h=_value(s.volume, row, body),
            observed_at=opt_float(_value(s.observed, row, body)),
        )


def _has(row: Row, path: str) -> bool:
    parent, _, key = path.rpartition(".")
    where = dig(row, parent) if parent else row
    return isinstance(where, Mapping) and key in where


def _value(spec_field: Field, row: Row, body: Any) -> Any:
    if spec_field is None:
        return None
    if isinstance(spec_field, str):
        return dig(row, spec_field)
    return spec_field(row, body)


def rows_at(data: Any, path: tuple[str, ...], *, keyed: bool) -> Any:
    """The rows at ``path`` (a list, or with ``keyed`` an object); a wrong shape fails the poll."""
    where = "body"
    for step in path:
        data = as_dict(data, where).get(step)
        where = step if where == "body" else f"{where}.{step}"
    return as_dict(data, where) if keyed else as_list(data, where)


def adapter_class(name: str, spec: QuoteSpec) -> type[Adapter]:
    """The adapter class of one spec (the name is the class name callers import)."""
    namespace = {
        "__doc__": spec.doc,
        "__module__": __name__,
        "spec": spec,
        "family": spec.family,
        "id_key": spec.id_key,
        "ban_statuses": spec.ban_statuses,
    }
    return cast(type[Adapter], type(name, (SpecAdapter,), namespace))
