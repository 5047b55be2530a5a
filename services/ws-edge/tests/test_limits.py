"""Limits at the edge: token bucket, message rate, connection caps, client address, origins."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pricewire_contracts import CloseCode
from pricewire_edge.limits import (
    _ADDRESSES_KEPT,
    ConnectionLimiter,
    LimitsSettings,
    MessageRateLimiter,
    RateDecision,
    TokenBucket,
    client_ip,
    limit_key,
    origin_allowed,
    subscription_weight,
)

# -- token bucket ----------------------------------------------------------------------------------


def test_a_full_bucket_grants_the_burst_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=100.0)
    assert [bucket.take(100.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(100.05) is False  # half a token
    assert bucket.take(100.1) is True
    assert bucket.take(100.1) is False
    # a long pause refills to the burst, not beyond
    assert sum(bucket.take(1000.0) for _ in range(20)) == 5


def test_a_clock_going_backwards_refills_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=50.0)
    assert bucket.take(50.0)
    assert not bucket.take(10.0)
    assert not bucket.take(50.5)
    assert bucket.take(51.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_bucket_refuses_impossible_parameters(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(rate=rate, burst=burst)


@settings(deadline=None)
@given(
    rate=st.floats(min_value=0.01, max_value=1000),
    burst=st.integers(min_value=1, max_value=100),
    gaps=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=300),
)
def test_a_bucket_never_grants_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    now, granted = 0.0, 0
    for gap in gaps:
        now += gap
        granted += bucket.take(now)
        assert granted <= burst + rate * now + 1e-6


@settings(deadline=None)
@given(rate=st.floats(min_value=0.1, max_value=1000), burst=st.integers(1, 50))
def test_a_client_sending_exactly_at_the_rate_is_never_refused(rate: float, burst: int) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    assert all(bucket.take(i / rate) for i in range(500))


# -- message rate ----------------------------------------------------------------------------------


def limiter(**overrides: Any) -> MessageRateLimiter:
    values: dict[str, Any] = {
        "rate": 1,
        "burst": 2,
        "max_violations": 3,
        "window_s": 10,
        "now": 0.0,
    }
    values.update(overrides)
    return MessageRateLimiter(**values)


def test_messages_over_the_rate_are_warned_then_the_connection_is_closed() -> None:
    rl = limiter()
    decisions = [rl.check(0.0) for _ in range(5)]
    assert decisions == [
        RateDecision.ALLOW,
        RateDecision.ALLOW,
        RateDecision.WARN,
        RateDecision.WARN,
        RateDecision.CLOSE,
    ]


def test_violations_older_than_the_window_are_forgiven() -> None:
    rl = limiter(rate=0.1, burst=1)
    assert rl.check(0.0) is RateDecision.ALLOW
    assert rl.check(0.0) is RateDecision.WARN
    assert rl.check(1.0) is RateDecision.WARN
    # 11 s later both violations left the window; the bucket has refilled one token
    assert rl.check(11.0) is RateDecision.ALLOW
    assert rl.check(11.0) is RateDecision.WARN
    assert rl.check(11.5) is RateDecision.WARN
    assert rl.check(11.6) is RateDecision.CLOSE


def test_a_flood_gets_fewer_warnings_than_the_close_threshold() -> None:
    rl = limiter(rate=20, burst=40, max_violations=10)
    decisions = [rl.check(0.001 * i) for i in range(10_000)]
    first_close = decisions.index(RateDecision.CLOSE)
    assert decisions[:first_close].count(RateDecision.WARN) == 9


def test_a_well_behaved_client_is_never_warned() -> None:
    rl = LimitsSettings().rate_limiter(now=0.0)
    assert all(rl.check(i / 20) is RateDecision.ALLOW for i in range(2000))


@pytest.mark.parametrize(
    ("symbols", "weight"), [(None, 1), (frozenset(), 1), (["BTC"], 1), (["BTC", "ETH", "SOL"], 3)]
)
def test_subscription_weight_counts_groups_once_and_symbols_each(symbols: Any, weight: int) -> None:
    assert subscription_weight(symbols) == weight


# -- connection limiter -------------------------------------------------------------------------------


def test_connections_per_ip_are_capped_with_1008_and_released() -> None:
    cl = ConnectionLimiter(max_per_ip=2, max_total=10)
    assert cl.acquire("192.0.2.1") is None
    assert cl.acquire("192.0.2.1") is None
    refusal = cl.acquire("192.0.2.1")
    assert refusal is not None
    assert (refusal.reason, refusal.close_code, refusal.http_status) == (
        "per_ip",
        CloseCode.POLICY_VIOLATION,
        429,
    )
    assert cl.acquire("192.0.2.2") is None  # another address is unaffected
    cl.release("192.0.2.1")
    assert cl.acquire("192.0.2.1") is None
    assert cl.total == 3


def test_the_global_cap_refuses_with_1013() -> None:
    cl = ConnectionLimiter(max_per_ip=5, max_total=2)
    assert cl.acquire("192.0.2.1") is None
    assert cl.acquire("192.0.2.2") is None
    refusal = cl.acquire("192.0.2.3")
    assert refusal is not None
    assert (refusal.reason, refusal.close_code, refusal.http_status) == (
        "global",
        CloseCode.TRY_AGAIN_LATER,
        503,
    )
    assert cl.count("192.0.2.3") == 0


def test_ipv6_clients_are_counted_per_slash_64_and_mapped_ipv4_as_ipv4() -> None:
    cl = ConnectionLimiter(max_per_ip=2, max_total=100)
    assert cl.acquire("2001:db8::1") is None
    assert cl.acquire("2001:db8::ffff:2") is None
    assert cl.acquire("2001:db8::3") is not None  # same /64
    assert cl.acquire("2001:db8:0:1::1") is None  # another /64
    assert limit_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert limit_key("not an address") == "not an address"


def test_releasing_more_than_acquired_never_goes_negative() -> None:
    cl = ConnectionLimiter(max_per_ip=1, max_total=1)
    cl.release("192.0.2.1")
    assert cl.total == 0
    assert cl.acquire("192.0.2.1") is None
    cl.release("192.0.2.1")
    cl.release("192.0.2.1")
    assert (cl.total, cl.addresses) == (0, 0)


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::1", "x"])),
        max_size=200,
    )
)
def test_connection_counts_match_a_model_and_never_exceed_the_caps(
    ops: list[tuple[bool, str]],
) -> None:
    cl = ConnectionLimiter(max_per_ip=3, max_total=5)
    model: dict[str, int] = {}
    for acquire, ip in ops:
        if acquire:
            if cl.acquire(ip) is None:
                model[ip] = model.get(ip, 0) + 1
        elif model.get(ip, 0) > 0:
            cl.release(ip)
            model[ip] -= 1
        assert cl.total == sum(model.values()) <= 5
        assert all(cl.count(ip) == n <= 3 for ip, n in model.items())


# -- client address --------------------------------------------------------------------------------

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        # an untrusted peer's header is ignored whatever it says
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "198.51.100.7", "198.51.100.7"),
        # the right-most untrusted entry wins; the left ones may be forged by the client
        ("10.0.0.5", "6.6.6.6, 198.51.100.7", "198.51.100.7"),
        ("10.0.0.5", "6.6.6.6, 198.51.100.7, 10.1.1.1", "198.51.100.7"),
        # every hop trusted: the left-most one is the origin
        ("10.0.0.5", "10.9.9.9, 10.1.1.1", "10.9.9.9"),
        # ports and brackets as some proxies write them
        ("10.0.0.5", "198.51.100.7:4711", "198.51.100.7"),
        ("10.0.0.5", "[2001:db8::7]:4711", "2001:db8::7"),
        ("10.0.0.5", "2001:db8::7", "2001:db8::7"),
        ("::1", "198.51.100.7", "198.51.100.7"),
        ("::ffff:10.0.0.5", "198.51.100.7", "198.51.100.7"),
        # a malformed entry stops at the last address a trusted proxy vouched for
        ("10.0.0.5", "198.51.100.7, garbage", "10.0.0.5"),
        ("10.0.0.5", "garbage, 10.1.1.1", "10.1.1.1"),
        ("10.0.0.5", " , ", "10.0.0.5"),
        (None, "198.51.100.7", "unknown"),
        ("not-an-ip", "198.51.100.7", "not-an-ip"),
    ],
)
def test_client_ip_honours_forwarded_for_only_from_trusted_proxies(
    peer: str | None, xff: str | None, expected: str
) -> None:
    headers = [("Host", "example.com")] + ([("X-Forwarded-For", xff)] if xff is not None else [])
    assert client_ip(peer, headers, PROXIES) == expected


def test_client_ip_joins_repeated_headers_in_order_and_accepts_a_mapping() -> None:
    headers = [("x-forwarded-for", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7, 10.2.2.2")]
    assert client_ip("10.0.0.5", headers, PROXIES) == "198.51.100.7"
    assert client_ip("10.0.0.5", {"X-Forwarded-For": "198.51.100.8"}, PROXIES) == "198.51.100.8"


def test_by_default_only_loopback_proxies_are_trusted() -> None:
    limits = LimitsSettings()
    assert limits.client_ip("127.0.0.1", [("X-Forwarded-For", "198.51.100.7")]) == "198.51.100.7"
    assert limits.client_ip("10.0.0.5", [("X-Forwarded-For", "198.51.100.7")]) == "10.0.0.5"


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["10.0.0.5", "203.0.113.9", "::1", "::ffff:10.0.0.5", "bad", ""]),
            st.lists(
                st.sampled_from(
                    ["198.51.100.7", "10.1.1.1", " 10.2.2.2", "[2001:db8::7]:80", "x", " "]
                ),
                max_size=4,
            ),
        ),
        max_size=20,
    )
)
def test_the_settings_keep_each_addresss_judgement_and_answer_as_the_function(
    calls: list[tuple[str, list[str]]],
) -> None:
    """LimitsSettings.client_ip keeps what it decided per address (peers and X-Forwarded-For
    entries): asked again and again, its answers stay the uncached function's."""
    limits = LimitsSettings(trusted_proxies=PROXIES)
    for peer, hops in calls:
        headers = [("X-Forwarded-For", ",".join(hops))] if hops else []
        assert limits.client_ip(peer, headers) == client_ip(peer, headers, PROXIES)
        assert limits.trusted_peer(peer) == (peer in ("10.0.0.5", "::1", "::ffff:10.0.0.5"))


def test_the_kept_judgements_are_bounded() -> None:
    limits = LimitsSettings(trusted_proxies=PROXIES)
    for i in range(_ADDRESSES_KEPT + 500):  # a client writing a new address every time
        forwarded = f"198.51.{i >> 8}.{i & 255}"
        assert limits.client_ip("10.0.0.5", {"X-Forwarded-For": forwarded}) == forwarded
    private = limits.__pydantic_private__
    assert private is not None
    assert 0 < len(private["_addresses"]) <= _ADDRESSES_KEPT


@settings(deadline=None)
@given(st.text(max_size=200), st.sampled_from(["10.0.0.5", "203.0.113.9", "::1"]))
def test_client_ip_never_raises_and_never_trusts_an_untrusted_peer(xff: str, peer: str) -> None:
    result = client_ip(peer, [("X-Forwarded-For", xff)], PROXIES)
    if peer == "203.0.113.9":
        assert result == peer
    else:
        ipaddress.ip_address(result)  # always an address


# -- origins ---------------------------------------------------------------------------------------

DEFAULT = ["self", "localhost"]


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "expected"),
    [
        (None, "example.com", DEFAULT, True),  # the Python client sends no Origin
        ("https://example.com", "example.com", DEFAULT, True),
        ("http://example.com:8000", "example.com:8000", DEFAULT, True),
        ("https://EXAMPLE.com", "example.com:443", DEFAULT, True),
        ("https://example.com:8443", "example.com", DEFAULT, False),
        ("https://evil.test", "example.com", DEFAULT, False),
        ("https://example.com.evil.test", "example.com", DEFAULT, False),
        ("http://localhost:5173", "example.com", DEFAULT, True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", DEFAULT, True),
        ("http://[::1]:3000", "example.com", DEFAULT, True),
        ("http://localhost.evil.test", "example.com", DEFAULT, False),
        ("null", "example.com", DEFAULT, False),
        ("file://", "example.com", DEFAULT, False),
        ("https://example.com/path", "example.com", DEFAULT, False),
        ("https://example.com", None, ["self"], False),
        ("https://example.com", "", ["self"], False),
        ("http://localhost:5173", "example.com", ["self"], False),
        ("https://app.example.com", "api.example.com", ["https://app.example.com"], True),
        ("http://app.example.com", "api.example.com", ["https://app.example.com"], False),
        ("https://app.example.com:444", "x", ["https://app.example.com"], False),
        ("https://a.example.com", "x", ["https://*.example.com"], True),
        ("https://a.b.example.com", "x", ["https://*.example.com"], True),
        ("https://example.com", "x", ["https://*.example.com"], False),
        ("https://badexample.com", "x", ["https://*.example.com"], False),
        ("https://anything.test", "x", ["*"], True),
        ("null", "x", ["*"], True),
    ],
)
def test_origin_allowlist(
    origin: str | None, host: str | None, allowed: list[str], expected: bool
) -> None:
    assert origin_allowed(origin, host, allowed=allowed) is expected


def test_settings_check_origin_patterns_and_caps() -> None:
    assert LimitsSettings().origin_allowed("http://localhost:8000", "localhost:8000")
    assert not LimitsSettings().origin_allowed("https://evil.test", "localhost:8000")
    with pytest.raises(ValidationError):
        LimitsSettings(allowed_origins=["example.com"])  # no scheme: would never match
    with pytest.raises(ValidationError):
        LimitsSettings(max_connections=10, max_connections_per_ip=20)
    with pytest.raises(ValidationError):
        LimitsSettings(messages_per_s=0)
    with pytest.raises(ValidationError):
        LimitsSettings(unknown=1)  # type: ignore[call-arg]


def test_default_limits_are_the_documented_ones() -> None:
    limits = LimitsSettings()
    assert limits.max_message_bytes == 65_536
    assert (limits.messages_per_s, limits.message_burst) == (20.0, 40)
    assert (limits.rate_violations_to_close, limits.rate_violation_window_s) == (10, 10.0)
    assert limits.max_subscriptions == 256
    assert (limits.max_connections_per_ip, limits.max_connections) == (100, 10_000)
    assert (limits.idle_timeout_s, limits.ping_interval_s, limits.ping_timeout_s) == (
        120.0,
        20.0,
        20.0,
    )
    assert limits.allowed_origins == ["self", "localhost"]
    cl = limits.connection_limiter()
    assert (cl.max_per_ip, cl.max_total) == (100, 10_000)


@settings(deadline=None)
@given(st.text(max_size=100), st.text(max_size=60))
def test_origin_allowed_never_raises(origin: str, host: str) -> None:
    origin_allowed(origin, host, allowed=DEFAULT)
    origin_allowed(origin, host, allowed=["https://*.example.com", "https://a.test:8443"])
