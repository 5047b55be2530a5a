"""What every venue protocol shares: the normalised :class:`Tick`, the classified
:class:`Frame`, the venue's limits, and the :class:`VenueProtocol` base.

Pure code: text in, a :class:`Frame` out; text to send (subscribe, ping, pong) out. No I/O and
no clock: the caller passes the receive time.

A price is published only when it is finite and positive (as for REST); a tick entry that
fails this is dropped and counted on the frame (``dropped``), a frame that cannot be read at
all is ``malformed``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

import orjson

from ..adapters.base import opt_float
from ..catalog import Asset

__all__ = [
    "INVALID",
    "Frame",
    "FrameKind",
    "SequenceMode",
    "Tick",
    "VenueLimits",
    "VenueProtocol",
    "decode_json",
    "dumps",
    "iso_time",
    "ms_time",
    "number",
    "positive",
    "rest_pair",
]

FrameKind = Literal[
    "ack",  # a subscription confirmed
    "heartbeat",  # the venue says it is alive (also: answers to our pings)
    "ping",  # the venue asks for an answer (``Frame.reply``)
    "tick",  # prices (``Frame.ticks``)
    "error",  # the venue reports an error (``Frame.detail``; ``rate_limited`` when so)
    "reconnect",  # the venue asks us to reconnect (maintenance, restart)
    "info",  # anything else that is well-formed (status, snapshots without a price)
    "malformed",  # not the venue's protocol: counted and dropped
]

#: how a venue numbers its messages: ``contiguous`` (each next is last + 1: a jump is a gap),
#: ``monotonic`` (increasing, with holes by design: only a step back is noticed), or ``none``
SequenceMode = Literal["none", "contiguous", "monotonic"]


@dataclass(frozen=True, slots=True)
class Tick:
    """One venue's price for one catalog symbol, normalised."""

    venue: str
    symbol: str  #: the catalog's symbol (BTC)
    pair: str  #: the venue's name of the market (BTCUSDT, BTC-USD, BTC/USD)
    price: float  #: finite and positive, USD or USDT
    received_at: float  #: unix seconds, when the frame arrived
    exchange_ts: float | None = None  #: unix seconds, the venue's own time, if it gives one
    volume_24h: float | None = None  #: USD (quote currency) volume over 24 h, if given
    change_24h: float | None = None  #: percent, if given
    sequence: int | None = None  #: the venue's number for this message, if any

    @property
    def observed_at(self) -> float:
        """The venue's time when plausible (not in the future), else the receive time."""
        ts = self.exchange_ts
        return ts if ts is not None and ts <= self.received_at + 1.0 else self.received_at


@dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameKind
    ticks: tuple[Tick, ...] = ()
    reply: str | None = None  #: text to send back at once (answers to the venue's pings)
    detail: str | None = None
    dropped: int = 0  #: tick entries dropped as invalid (price missing, zero, not finite)
    rate_limited: bool = False  #: an error that says: too many requests


@dataclass(frozen=True, slots=True)
class VenueLimits:
    """A venue's documented limits and liveness rules (the manager respects them)."""

    streams_per_connection: int  #: subscriptions one connection may hold
    symbols_per_subscribe: int  #: symbols (args) one subscribe message may carry
    messages_per_s: float  #: messages we may send per second on one connection
    connects_per_s: float  #: new connections per second (per IP)
    stall_s: float  #: default: no message for this long means a silent stall
    ping_interval_s: float | None = None  #: application-level ping this often (None: none)
    max_connection_s: float | None = None  #: the venue closes a connection after this long
    sequence: SequenceMode = "none"


class VenueProtocol(ABC):
    """One venue's public market-data WebSocket protocol."""

    venue: ClassVar[str]
    #: the public endpoint (``make run``); the settings can point it elsewhere
    url: ClassVar[str]
    #: the REST provider of the same upstream (its quotes and the ticks are one vote)
    rest_provider: ClassVar[str]
    #: the REST adapter family whose symbol rules map catalog symbols to venue pairs
    rest_family: ClassVar[str]
    limits: ClassVar[VenueLimits]

    def __init__(self, assets: Sequence[Asset]) -> None:
        self.pairs: dict[str, str] = {}  #: venue pair -> catalog symbol
        for asset in assets:
            pair = self.pair(asset)
            if pair:
                self.pairs[pair] = asset.symbol
        self._by_key = {self.key(p): s for p, s in self.pairs.items()}

    @property
    def sequence_mode(self) -> SequenceMode:
        return self.limits.sequence

    # -- symbols -----------------------------------------------------------------------
    def pair(self, asset: Asset) -> str | None:
        """The venue's market for ``asset``, by the REST adapter's symbol rules."""
        return rest_pair(self.rest_family, asset)

    def key(self, pair: str) -> str:
        """How frames name a pair, normalised for lookup (upper case by default)."""
        return pair.upper()

    def symbol_of(self, name: Any) -> str | None:
        return self._by_key.get(self.key(name)) if isinstance(name, str) else None

    # -- what we send ------------------------------------------------------------------
    def connect_url(self, base_url: str, pairs: Sequence[str]) -> str:
        return base_url

    @abstractmethod
    def subscribe_messages(self, pairs: Sequence[str]) -> list[str]:
        """The subscribe messages for ``pairs`` (chunked to ``symbols_per_subscribe``)."""

    def ping(self) -> str | None:
        """The application-level ping, if the venue wants one."""
        return None

    def expected_acks(self, pairs: Sequence[str]) -> int:
        """How many acks confirm a subscription of ``pairs``."""
        return len(self.chunks(pairs))

    def chunks(self, pairs: Sequence[str]) -> list[list[str]]:
        size = max(1, self.limits.symbols_per_subscribe)
        return [list(pairs[i : i + size]) for i in range(0, len(pairs), size)]

    # -- what we receive ---------------------------------------------------------------
    @abstractmethod
    def parse(self, raw: str | bytes, received_at: float) -> Frame:
        """Classify one frame; never raises."""

    def tick(
        self,
        name: Any,
        price: Any,
        received_at: float,
        *,
        exchange_ts: float | None = None,
        volume_24h: float | None = None,
        change_24h: float | None = None,
        sequence: Any = None,
    ) -> Tick | None:
        """A :class:`Tick` for a pair this venue streams, or None (unknown pair, bad price)."""
        symbol = self.symbol_of(name)
        value = positive(price)
        if symbol is None or value is None:
            return None
        seq = sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else None
        return Tick(
            venue=self.venue,
            symbol=symbol,
            pair=str(name),
            price=value,
            received_at=received_at,
            exchange_ts=exchange_ts,
            volume_24h=volume_24h if volume_24h is None or volume_24h >= 0 else None,
            change_24h=change_24h,
            sequence=seq,
        )

    def ticks_frame(self, ticks: Iterable[Tick | None], entries: int) -> Frame:
        """A frame of the valid ticks; entries that gave none are counted as dropped."""
        good = tuple(t for t in ticks if t is not None)
        if not good and entries:
            return Frame("malformed", detail="no valid price in the frame", dropped=entries)
        return Frame("tick", good, dropped=entries - len(good))


# -- helpers ------------------------------------------------------------------------------
def rest_pair(family: str, asset: Asset) -> str | None:
    """The pair the REST adapter ``family`` polls for ``asset`` (one symbol rule for both)."""
    from ..adapters import adapter_for

    try:
        return adapter_for(family).pair(asset)
    except Exception:
        return None


def decode_json(raw: str | bytes) -> Any:
    """The decoded frame, or ``INVALID`` when it is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return INVALID


INVALID: Any = object()


#: A finite float from a JSON number or numeric string, else None: the REST adapters' rule.
number = opt_float


def positive(raw: Any) -> float | None:
    """A finite, positive float, else None (a price must be both).

    >>> positive("43250.5"), positive("0"), positive("nan"), positive(-1), positive(True)
    (43250.5, None, None, None, None)
    """
    value = number(raw)
    return value if value is not None and value > 0 else None


def ms_time(raw: Any) -> float | None:
    """Unix seconds from milliseconds (number or string)."""
    value = number(raw)
    return value / 1000.0 if value is not None and value > 0 else None


def iso_time(raw: Any) -> float | None:
    """Unix seconds from an RFC 3339 time (``...Z``), else None.

    >>> iso_time("2022-10-19T23:28:22.061769Z")
    1666222102.061769
    """
    if not isinstance(raw, str) or not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
