"""Chain health: JSON-RPC nodes (EVM ``eth_blockNumber``, Solana ``getSlot``, TRON
``getnowblock``) and explorers (Etherscan-style APIs, Blockchair, Ethplorer, Esplora,
mempool.space, Whale Alert). Some explorers also publish a price, used as a quote."""

from __future__ import annotations

from typing import Any, ClassVar

from pricewire_contracts import Feed

from ..errors import BadResponse, PollFailure, RateLimited
from ..quotes import ChainHead, PollData
from .base import Adapter, ParseContext, RawResponse, as_dict, opt_float, parse_iso_time

__all__ = [
    "BlockchairStats",
    "EsploraHeight",
    "EtherscanPrice",
    "EtherscanProxyBlock",
    "EthplorerLastBlock",
    "EvmRpc",
    "MempoolPrices",
    "SolanaRpc",
    "TronRpc",
    "WhaleAlertStatus",
]


def _height(value: Any, what: str) -> int:
    """A block height from an int or a ``0x`` hex string; must be positive."""
    try:
        height = int(value, 16) if isinstance(value, str) and value.startswith("0x") else int(value)
    except (TypeError, ValueError) as exc:
        raise BadResponse(f"{what} is not a block number: {value!r}") from exc
    if height <= 0:
        raise BadResponse(f"{what} is not a positive block number: {height}")
    return height


def _quantity(value: Any) -> float | None:
    """A JSON-RPC quantity (``0x`` hex string, or a number) as a float, else None."""
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return float(int(value, 16))
        except ValueError:
            return None
    return opt_float(value)


def _block_time(seconds: float | None, ctx: ParseContext) -> float | None:
    """A head block's unix time, when plausible (after 2009, not ahead of our clock by more
    than a minute); a wrong clock is left out, it does not fail the poll."""
    if seconds is None or not 1_230_000_000 <= seconds <= ctx.now + 60:
        return None
    return seconds


def _jsonrpc_error(data: Any) -> PollFailure | None:
    # {"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "rate limit exceeded"}}
    error = data.get("error") if isinstance(data, dict) else None
    if error:
        message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
        code = error.get("code") if isinstance(error, dict) else None
        if code in (-32005, 429) or "rate" in message.lower() or "limit" in message.lower():
            return RateLimited(message)
        return BadResponse(f"JSON-RPC error {code}: {message}")
    return None


class EvmRpc(Adapter):
    """``eth_getBlockByNumber("latest", false)``: ``{"jsonrpc": "2.0", "id": 1, "result":
    {"number": "0x12a05f2", "timestamp": "0x65a1b2c3", "baseFeePerGas": "0x5d21dba00", ...}}``
    (no ``baseFeePerGas`` before London); ``eth_blockNumber``'s bare ``"result": "0x12a05f2"``
    is read too. The chain is the provider's catalog ``chain``."""

    family = "evm_rpc"
    feeds: ClassVar[frozenset[Feed]] = frozenset({"chain"})

    def error_in(self, data: Any) -> PollFailure | None:
        return _jsonrpc_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        result = as_dict(data, "body").get("result")
        chain = ctx.options.get("chain", "")
        if not isinstance(result, dict):
            return PollData(chain_head=ChainHead(chain, _height(result, "result")), items=1)
        base_fee = _quantity(result.get("baseFeePerGas"))
        head = ChainHead(
            chain,
            _height(result.get("number"), "result.number"),
            block_time=_block_time(_quantity(result.get("timestamp")), ctx),
            base_fee_gwei=None if base_fee is None or base_fee < 0 else base_fee / 1e9,
        )
        return PollData(chain_head=head, items=1)


class SolanaRpc(EvmRpc):
    """``getSlot``: ``{"jsonrpc": "2.0", "result": 247000000, "id": 1}``."""

    family = "solana_rpc"


class TronRpc(Adapter):
    """``/wallet/getnowblock``: ``{"blockID", "block_header": {"raw_data": {"number",
    "timestamp" (ms), ...}}}``."""

    family = "tron_rpc"
    feeds: ClassVar[frozenset[Feed]] = frozenset({"chain"})

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and "Error" in data:
            message = str(data["Error"])
            return RateLimited(message) if "limit" in message.lower() else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        raw = as_dict(
            as_dict(as_dict(data, "body").get("block_header"), "header").get("raw_data"), "raw_data"
        )
        millis = opt_float(raw.get("timestamp"))
        head = ChainHead(
            "tron",
            _height(raw.get("number"), "number"),
            block_time=_block_time(None if millis is None else millis / 1000, ctx),
        )
        return PollData(chain_head=head, items=1)


def _etherscan_error(data: Any) -> PollFailure | None:
    # {"status": "0", "message": "NOTOK", "result": "Max rate limit reached"} with HTTP 200
    if isinstance(data, dict) and data.get("status") == "0":
        message = str(data.get("result") or data.get("message"))
        return RateLimited(message) if "rate limit" in message.lower() else BadResponse(message)
    return None


class EtherscanPrice(Adapter):
    """``?module=stats&action=ethprice`` (BscScan: ``bnbprice``, same shape): ``{"status": "1",
    "result": {"ethusd": "...", "ethusd_timestamp": "..."}}``. The symbol is ``options.symbol``."""

    family = "etherscan_price"
    yields_prices: ClassVar[bool] = True

    def error_in(self, data: Any) -> PollFailure | None:
        return _etherscan_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        result = as_dict(as_dict(data, "body").get("result"), "result")
        symbol = ctx.options.get("symbol", "ETH")
        if symbol not in {a.symbol for a in ctx.assets}:
            return PollData()
        quote = ctx.quote(
            symbol, result.get("ethusd"), observed_at=opt_float(result.get("ethusd_timestamp"))
        )
        return PollData(quotes=(quote,), items=1)


class EtherscanProxyBlock(Adapter):
    """Etherscan ``module=proxy&action=eth_blockNumber`` / Blockscout ``eth_block_number``:
    a JSON-RPC style ``result``; errors in Etherscan's ``status``/``result`` form."""

    family = "etherscan_proxy_block"
    feeds: ClassVar[frozenset[Feed]] = frozenset({"chain"})

    def error_in(self, data: Any) -> PollFailure | None:
        return _etherscan_error(data) or _jsonrpc_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        height = _height(as_dict(data, "body").get("result"), "result")
        return PollData(chain_head=ChainHead("ethereum", height), items=1)


class BlockchairStats(Adapter):
    """``/{chain}/stats``: ``{"data": {"best_block_height", "best_block_time",
    "market_price_usd", "market_price_usd_change_24h_percentage", "market_cap_usd"},
    "context": {"code": 200}}`` (``best_block_time`` in UTC, ``"2024-01-15 10:30:00"``).
    Blockchair signals limits with context codes 402 and 430."""

    family = "blockchair_stats"
    yields_prices: ClassVar[bool] = True
    feeds: ClassVar[frozenset[Feed]] = frozenset({"chain"})

    def error_in(self, data: Any) -> PollFailure | None:
        context = data.get("context") if isinstance(data, dict) else None
        if isinstance(context, dict) and context.get("code") not in (200, None):
            message = f"{context.get('code')}: {context.get('error')}"
            if context.get("code") in (402, 429, 430, 435):
                return RateLimited(message)
            return BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        stats = as_dict(as_dict(data, "body").get("data"), "data")
        symbol = ctx.options.get("symbol", "BTC")
        quote = ctx.quote(
            symbol,
            stats.get("market_price_usd"),
            change_24h=stats.get("market_price_usd_change_24h_percentage"),
            market_cap=stats.get("market_cap_usd"),
        )
        head = None
        if stats.get("best_block_height") is not None:
            best_time = stats.get("best_block_time")
            head = ChainHead(
                ctx.options.get("chain", symbol.lower()),
                _height(stats["best_block_height"], "best_block_height"),
                block_time=_block_time(
                    parse_iso_time(best_time.replace(" ", "T"))
                    if isinstance(best_time, str)
                    else None,
                    ctx,
                ),
            )
        return PollData(quotes=(quote,), chain_head=head, items=1)


class EthplorerLastBlock(Adapter):
    """``/getLastBlock``: ``{"lastBlock": 19000000}``; errors ``{"error": {"code", "message"}}``."""

    family = "ethplorer_lastblock"
    feeds: ClassVar[frozenset[Feed]] = frozenset({"chain"})

    def error_in(self, data: Any) -> PollFailure | None:
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            message = f"{error.get('code')}: {error.get('message')}"
            # Ethplorer: code 429 / "limit exceeded"
            if error.get("code") == 429 or "limit" in str(error.get("message", "")).lower():
                return RateLimited(message)
            return BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        height = _height(as_dict(data, "body").get("lastBlock"), "lastBlock")
        return PollData(chain_head=ChainHead("ethereum", height), items=1)


class EsploraHeight(Adapter):
    """Esplora ``/blocks/tip/height``: the height as plain text."""

    family = "esplora_height"
    feeds: ClassVar[frozenset[Feed]] = frozenset({"chain"})
    body_kind = "body"

    def parse_body(self, response: RawResponse, ctx: ParseContext) -> PollData:
        text = response.body.strip()
        if not text.isdigit():
            raise BadResponse(f"not a block height: {text[:40]!r}")
        return PollData(chain_head=ChainHead("bitcoin", _height(text.decode(), "height")), items=1)


class MempoolPrices(Adapter):
    """mempool.space ``/api/v1/prices``: ``{"time": 1703252411, "USD": 43753, "EUR": ...}``."""

    family = "mempool_prices"
    yields_prices: ClassVar[bool] = True

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        body = as_dict(data, "body")
        symbol = ctx.options.get("symbol", "BTC")
        quote = ctx.quote(symbol, body.get("USD"), observed_at=opt_float(body.get("time")))
        return PollData(quotes=(quote,), items=1)


class WhaleAlertStatus(Adapter):
    """Whale Alert ``/v1/status``: ``{"result": "success", "blockchain_count": 10, "status":
    [...]}``; errors ``{"result": "error", "message": ...}``."""

    family = "whale_alert_status"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and data.get("result") == "error":
            message = str(data.get("message"))
            return RateLimited(message) if "limit" in message.lower() else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        body = as_dict(data, "body")
        if body.get("result") != "success":
            raise BadResponse(f"result={body.get('result')!r}")
        return PollData(items=int(opt_float(body.get("blockchain_count")) or 0))
