from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from pricewire_contracts import ClientType, Group, PingRequest, SubscribeRequest
from pricewire_edge import protocol
from pricewire_edge.protocol import ProtocolError, classify_client, parse_client_message, text_frame


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "invalid_message"),
        (b'"subscribe"', "invalid_message"),
        (b"{}", "invalid_message"),
        (b'{"type": 3}', "invalid_message"),
        (b'{"type": "dance"}', "unknown_type"),
        (b'{"type": "subscribe"}', "invalid_message"),
        (b'{"type": "subscribe", "group": "weather"}', "unknown_group"),
        (b'{"type": "unsubscribe", "group": 7}', "unknown_group"),
        (b'{"type": "subscribe", "group": "prices", "symbols": "BTC"}', "invalid_message"),
        (b'{"type": "subscribe", "group": "prices", "symbols": ["btc"]}', "invalid_message"),
        (b'{"type": "auth"}', "invalid_message"),
        (b'{"type": "auth", "token": ""}', "invalid_message"),
    ],
)
def test_bad_client_messages_get_a_typed_error(raw: bytes, code: str) -> None:
    result = parse_client_message(raw)
    assert isinstance(result, ProtocolError)
    assert result.code == code
    assert result.message


def test_the_guides_client_messages_parse() -> None:
    sub = parse_client_message(json.dumps({"type": "subscribe", "group": "market"}))
    assert isinstance(sub, SubscribeRequest)
    assert sub.group is Group.MARKET
    assert isinstance(parse_client_message('{"type": "ping"}'), PingRequest)
    for kind in ("get_stats", "ping"):
        assert not isinstance(parse_client_message(json.dumps({"type": kind})), ProtocolError)


def test_an_error_never_echoes_a_huge_type_back() -> None:
    result = parse_client_message(json.dumps({"type": "x" * 10_000}))
    assert isinstance(result, ProtocolError)
    assert len(result.message) < 300


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_any_input_gives_a_request_or_a_protocol_error(raw: bytes | str) -> None:
    parse_client_message(raw)  # never raises


@given(
    st.dictionaries(
        st.sampled_from(
            ["type", "group", "symbols", "token", "session_id", "last_seq", "max_rate_hz"]
        ),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=10),
            st.lists(st.text(max_size=5), max_size=3),
        ),
    )
)
def test_any_json_object_gives_a_request_or_a_protocol_error(body: dict[str, object]) -> None:
    parse_client_message(json.dumps(body))


@pytest.mark.parametrize(
    ("ua", "override", "expected"),
    [
        ("Python/3.11 websockets/14.1", None, ClientType.API),
        ("curl/8.0", None, ClientType.API),
        (None, None, ClientType.API),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
            None,
            ClientType.BROWSER,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
            None,
            ClientType.MOBILE,
        ),
        (
            "Mozilla/5.0 (Linux; Android 14) Chrome/120 Mobile Safari/537.36",
            None,
            ClientType.MOBILE,
        ),
        ("okhttp/4.12.0", None, ClientType.MOBILE),
        ("Python/3.11 websockets/14.1", "mobile", ClientType.MOBILE),
        ("Mozilla/5.0 Chrome/120", "API", ClientType.API),
        ("Mozilla/5.0 Chrome/120", "toaster", ClientType.BROWSER),
    ],
)
def test_client_type_comes_from_the_user_agent_and_the_query_overrides_it(
    ua: str | None, override: str | None, expected: ClientType
) -> None:
    assert classify_client(ua, override) is expected


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frame_is_a_valid_unmasked_final_frame(size: int) -> None:
    payload = b"x" * size
    reader = StreamReader()
    reader.feed_data(text_frame(payload))
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    else:  # pragma: no cover - the parser needs no more bytes
        pytest.fail("frame incomplete")
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert frame.data == payload


def test_requests_without_a_secret_are_parsed_once_and_tokens_are_never_kept() -> None:
    raw = b'{"type": "subscribe", "group": "prices", "symbols": ["BTC"], "max_rate_hz": 2}'
    first = parse_client_message(raw)
    assert isinstance(first, SubscribeRequest)
    assert parse_client_message(raw) is first  # kept: a connect storm sends it thousands of times
    assert parse_client_message(raw.decode()) == first
    auth = b'{"type": "auth", "token": "a-secret-token"}'
    assert parse_client_message(auth) is not parse_client_message(auth)
    assert auth not in protocol._kept
    bad = b'{"type": "subscribe", "group": "weather"}'
    assert isinstance(parse_client_message(bad), ProtocolError)
    assert bad not in protocol._kept
    big = b'{"type": "ping", "pad": "%s"}' % (b"x" * 600)
    assert isinstance(parse_client_message(big), PingRequest)
    assert big not in protocol._kept
    for n in range(3 * protocol._KEPT_MAX):
        assert isinstance(parse_client_message(b'{"type": "ping", "n": %d}' % n), PingRequest)
    assert 0 < len(protocol._kept) <= protocol._KEPT_MAX
