from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from pricewire_contracts import (
    Group,
    PriceData,
    PriceUpdate,
    SubscribeRequest,
    Welcome,
    client_message_adapter,
    json_schemas,
    utc_timestamp,
)


def test_welcome_has_the_guides_fields_in_the_guides_order() -> None:
    body = json.loads(Welcome(session_id="550e8400-e29b-41d4-a716-446655440000").model_dump_json())
    assert list(body) == ["type", "session_id", "message", "timestamp", "resume_token"]
    assert body["message"] == "به سیستم مانیتورینگ کریپتو خوش آمدید"


def test_timestamp_is_the_guides_format() -> None:
    ts = utc_timestamp()
    assert len(ts) == 19 and ts[10] == "T"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"type": "subscribe", "group": "market"}, SubscribeRequest),
        ({"type": "subscribe", "group": "prices", "symbols": ["BTC", "ETH"]}, SubscribeRequest),
    ],
)
def test_client_messages_parse(raw: dict[str, object], kind: type) -> None:
    assert isinstance(client_message_adapter.validate_python(raw), kind)


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "subscribe"},
        {"type": "subscribe", "group": "weather"},
        {"type": "subscribe", "group": "prices", "symbols": ["btc"]},
        {"type": "auth"},
        {"type": "nope"},
    ],
)
def test_bad_client_messages_are_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        client_message_adapter.validate_python(raw)


@pytest.mark.parametrize("price", [0, -1, float("nan"), float("inf")])
def test_a_price_must_be_finite_and_positive(price: float) -> None:
    with pytest.raises(ValidationError):
        PriceData(symbol="BTC", price=price)


def test_price_update_keeps_the_guides_shape() -> None:
    msg = PriceUpdate(data=PriceData(symbol="BTC", price=43250.5, change_24h=2.35))
    body = msg.model_dump(mode="json", exclude_none=True)
    assert body["type"] == "price_update"
    assert body["data"]["symbol"] == "BTC" and body["data"]["price"] == 43250.5
    assert "timestamp" in body


@pytest.mark.parametrize(
    "extra",
    [
        {"venues": ["binance", "binance"], "sources": 2},  # an upstream twice
        {"venues": ["binance", "kraken"], "sources": 3},  # sources is len(venues)
        {"confidence": 100.5},  # wider than the price
        {"confidence": -0.1},
        {"confidence": float("nan")},
        {"confidence_pct": float("inf")},
        {"venues": [f"v{i}" for i in range(33)], "sources": 33},  # bounded
    ],
)
def test_price_data_venues_and_confidence_are_coherent(extra: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PriceData.model_validate({"symbol": "BTC", "price": 100.0, **extra})


def test_price_data_carries_venues_and_confidence() -> None:
    data = PriceData(
        symbol="BTC",
        price=100.0,
        sources=2,
        venues=["binance", "kraken"],
        confidence=0.05,
        confidence_pct=0.05,
    )
    body = data.model_dump(mode="json", exclude_none=True)
    assert (body["venues"], body["sources"], body["confidence"]) == (["binance", "kraken"], 2, 0.05)


def test_every_contract_exports_a_json_schema() -> None:
    schemas = json_schemas()
    assert {"Welcome", "EdgeReport", "SessionOpened", "ProviderHealth", "PriceUpdate"} <= set(
        schemas
    )
    assert all(s.get("type") == "object" for s in schemas.values())


def test_groups_are_the_guides_five() -> None:
    assert [g.value for g in Group] == ["market", "prices", "news", "alerts", "all"]
