from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricewire_contracts import BroadcastMessage, Group
from pricewire_registry.broadcast import BroadcastRefused, check_token, parse_broadcast

LIMIT = 1024


def parse(body: bytes) -> BroadcastMessage | BroadcastRefused:
    return parse_broadcast(body, max_bytes=LIMIT)


def test_the_guides_example_is_accepted_as_is() -> None:
    body = '{"message": {"type": "notification", "text": "سیستم به‌روز شد"}, "group": "all"}'
    parsed = parse(body.encode())
    assert isinstance(parsed, BroadcastMessage)
    assert parsed.group is Group.ALL
    assert parsed.message == {"type": "notification", "text": "سیستم به‌روز شد"}


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"", 400, "empty body"),
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 422, "JSON object"),
        (b'{"group": "all"}', 422, "missing field(s): message"),
        (b'{"message": {"type": "x"}}', 422, "missing field(s): group"),
        (b'{"message": {"type": "x"}, "group": "everyone"}', 422, "unknown group 'everyone'"),
        (b'{"message": {"type": "x"}, "group": 3}', 422, "unknown group"),
        (b'{"message": "hello", "group": "all"}', 422, "must be a JSON object"),
        (b'{"message": {"text": "no type"}, "group": "all"}', 422, "string field 'type'"),
        (b'{"message": {"type": 7}, "group": "all"}', 422, "string field 'type'"),
        (b'{"message": {"type": "  "}, "group": "all"}', 422, "string field 'type'"),
        (b'{"message": {"type": "x"}, "group": "all", "extra": 1}', 422, "unknown field(s): extra"),
        (b'{"message": {"type": "' + b"t" * 65 + b'"}, "group": "all"}', 422, "longer than 64"),
        (
            b'{"message": {"type": "x", "pad": "' + b"p" * LIMIT + b'"}, "group": "all"}',
            413,
            "larger",
        ),
    ],
)
def test_every_malformed_body_gets_its_status_and_a_reason(
    body: bytes, status: int, reason: str
) -> None:
    refused = parse(body)
    assert isinstance(refused, BroadcastRefused)
    assert refused.status == status
    assert reason in refused.reason


@pytest.mark.parametrize(
    ("header", "token", "dev", "status"),
    [
        (None, None, False, 403),
        ("Bearer anything", None, False, 403),
        (None, None, True, None),
        (None, "s3cret", False, 401),
        (None, "s3cret", True, 401),
        ("Bearer wrong", "s3cret", False, 401),
        ("Basic s3cret", "s3cret", False, 401),
        ("Bearer ", "s3cret", False, 401),
        ("Bearer s3cret", "s3cret", False, None),
        ("bearer s3cret", "s3cret", False, None),
    ],
)
def test_token_rules(header: str | None, token: str | None, dev: bool, status: int | None) -> None:
    refused = check_token(header, token=token, dev_mode=dev)
    assert (refused.status if refused else None) == status


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(_json)
def test_any_json_gets_a_message_or_a_4xx_never_an_exception(value: object) -> None:
    parsed = parse(json.dumps(value).encode())
    assert isinstance(parsed, BroadcastMessage) or 400 <= parsed.status < 500


@given(st.binary(max_size=200))
def test_any_bytes_get_a_message_or_a_4xx(body: bytes) -> None:
    parsed = parse(body)
    assert isinstance(parsed, BroadcastMessage) or 400 <= parsed.status < 500
