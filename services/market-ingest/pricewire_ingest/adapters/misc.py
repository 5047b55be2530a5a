"""Sentiment, DeFi aggregates and availability probes."""

from __future__ import annotations

from typing import Any

from ..errors import BadResponse, PollFailure, RateLimited
from ..quotes import PollData, SentimentReading
from .base import Adapter, ParseContext, RawResponse, as_dict, as_list, opt_float

__all__ = [
    "DefiLlamaChains",
    "DefiLlamaStablecoins",
    "FearGreed",
    "GraphqlProbe",
    "HttpProbe",
]


class FearGreed(Adapter):
    """alternative.me ``/fng/``: ``{"data": [{"value": "40", "value_classification": "Fear",
    "timestamp": "..."}], "metadata": {"error": null}}``."""

    family = "fear_greed"
    feeds = frozenset({"sentiment"})

    def error_in(self, data: Any) -> PollFailure | None:
        metadata = data.get("metadata") if isinstance(data, dict) else None
        if isinstance(metadata, dict) and metadata.get("error"):
            return BadResponse(f"alternative.me error: {metadata['error']}")
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_list(as_dict(data, "body").get("data"), "data")
        if not rows:
            raise BadResponse("no index value")
        row = as_dict(rows[0], "data[0]")
        value = opt_float(row.get("value"))
        if value is None or not 0 <= value <= 100:
            raise BadResponse(f"index value out of range: {row.get('value')!r}")
        label = str(row.get("value_classification") or "")
        return PollData(sentiment=SentimentReading(int(value), label), items=len(rows))


class DefiLlamaChains(Adapter):
    """``api.llama.fi/v2/chains``: ``[{"name", "tvl", "tokenSymbol", "gecko_id", ...}]``."""

    family = "defillama_chains"

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_list(data, "chains")
        if not rows or not any(isinstance(r, dict) and opt_float(r.get("tvl")) for r in rows):
            raise BadResponse("no chain with a TVL")
        return PollData(items=len(rows))


class DefiLlamaStablecoins(Adapter):
    """``stablecoins.llama.fi/stablecoins``: ``{"peggedAssets": [{"symbol", "price", ...}]}``."""

    family = "defillama_stablecoins"

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        assets = as_list(as_dict(data, "body").get("peggedAssets"), "peggedAssets")
        if not assets:
            raise BadResponse("no stablecoins")
        return PollData(items=len(assets))


class HttpProbe(Adapter):
    """Availability only, for providers whose answer we do not parse: any 2xx is up. A JSON
    body that says ``{"error": ...}`` or ``{"status": "error"}`` still counts as an error."""

    family = "http_probe"
    body_kind = "body"

    def parse_body(self, response: RawResponse, ctx: ParseContext) -> PollData:
        head = response.body[:1].strip()
        if head in (b"{", b"["):
            import orjson

            try:
                data = orjson.loads(response.body)
            except orjson.JSONDecodeError as exc:
                raise BadResponse(f"invalid JSON (truncated or garbage): {exc}") from exc
            if isinstance(data, dict) and (data.get("status") == "error" or "error" in data):
                message = str(data.get("error") or data.get("message") or "error")
                if "limit" in message.lower():
                    raise RateLimited(message)
                raise BadResponse(message)
        return PollData(items=1)


class GraphqlProbe(Adapter):
    """A GraphQL endpoint answering a trivial query: ``{"data": ...}`` without ``errors``."""

    family = "graphql_probe"

    def error_in(self, data: Any) -> PollFailure | None:
        errors = data.get("errors") if isinstance(data, dict) else None
        if errors:
            message = str(
                errors[0].get("message")
                if isinstance(errors, list) and isinstance(errors[0], dict)
                else errors
            )
            return RateLimited(message) if "limit" in message.lower() else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        if "data" not in as_dict(data, "body"):
            raise BadResponse("no data in the GraphQL answer")
        return PollData(items=1)
