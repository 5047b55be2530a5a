"""The provider API drift of issue 13, each on the provider's real response shape, error shape
and status code: CryptoPanic developer v2 (plan in the path, posts without ``url``), CoinGecko
Demo and Pro (host, header, a poll interval from the monthly allowance), Bybit's 403 IP ban as
``rate_limited`` with a 10-minute wait, and Kraken's ``o`` (today's open) kept out of the change.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from pricewire_ingest.adapters import adapter_for, build_request
from pricewire_ingest.catalog import Catalog
from pricewire_ingest.core.breaker import CircuitBreaker
from pricewire_ingest.core.health import status_for
from pricewire_ingest.core.schedule import PollTiming, next_poll_at
from pricewire_ingest.errors import BadResponse, HttpStatusError, RateLimited
from pricewire_ingest.plans import apply_plans, coingecko_interval_s
from pricewire_ingest.settings import IngestSettings

# -- CryptoPanic ------------------------------------------------------------------------------


def test_cryptopanic_calls_the_developer_v2_path_with_the_plan_from_settings(
    catalog: Catalog,
) -> None:
    provider = catalog.provider("cryptopanic")
    spec = build_request(provider, adapter_for(provider.family), catalog.assets, key="tok")
    assert spec.url == "https://cryptopanic.com/api/developer/v2/posts/"
    assert spec.params["auth_token"] == "tok"
    growth = apply_plans(catalog, {}, cryptopanic_plan="growth").provider("cryptopanic")
    spec = build_request(growth, adapter_for(growth.family), catalog.assets, key="tok")
    assert spec.url == "https://cryptopanic.com/api/growth/v2/posts/"
    assert IngestSettings().cryptopanic_plan == "developer"


def test_cryptopanic_developer_plan_posts_without_url_are_linked_by_id(
    *, parse: Any, recorded: Any
) -> None:
    data = parse("cryptopanic_posts", recorded("cryptopanic_posts.v2developer.json"))
    assert [e.url for e in data.news] == [
        "https://cryptopanic.com/news/21034567/Bitcoin-ETF-inflows-top-1B",
        "https://cryptopanic.com/news/21034501/Ethereum-devs-set-Dencun-date",
    ]
    assert data.news[0].summary == "Spot bitcoin ETFs took in more than a billion dollars."
    assert data.news[0].source == "CryptoPanic"


def test_cryptopanic_prefers_the_original_article_url(*, parse: Any, recorded: Any) -> None:
    data = parse("cryptopanic_posts", recorded("cryptopanic_posts.v2growth.json"))
    assert data.news[0].url.startswith("https://www.coindesk.com/markets/2024/01/15/")
    assert data.news[0].source == "CoinDesk (via CryptoPanic)"


def test_cryptopanic_answer_with_no_usable_post_is_a_parse_failure(
    *, parse: Any, recorded: Any
) -> None:
    with pytest.raises(BadResponse, match="none of the 2 posts"):
        parse("cryptopanic_posts", recorded("cryptopanic_posts.unusable.json"))
    # an empty page is still an empty success (nothing new)
    assert parse("cryptopanic_posts", b'{"next": null, "previous": null, "results": []}').news == ()


@pytest.mark.parametrize(
    ("status", "expected"), [(401, HttpStatusError), (403, HttpStatusError), (200, BadResponse)]
)
def test_cryptopanic_bad_token(
    status: int, expected: type[Exception], *, parse: Any, recorded: Any
) -> None:
    with pytest.raises(expected):
        parse("cryptopanic_posts", recorded("cryptopanic_posts.unauthorized.json"), status=status)


# -- CoinGecko --------------------------------------------------------------------------------

_CG = ("coingecko", "cg_simple_price", "coingecko_community")


def test_coingecko_keyless_keeps_the_public_root_and_pace(catalog: Catalog) -> None:
    planned = apply_plans(catalog, {})
    for pid in _CG:
        before, after = catalog.provider(pid), planned.provider(pid)
        assert after.base_url == "https://api.coingecko.com/api/v3"
        assert after.poll_interval_s == before.poll_interval_s
        spec = build_request(after, adapter_for(after.family), catalog.assets, key=None)
        assert not any(h.startswith("x-cg-") for h in spec.headers)


def test_coingecko_demo_key_goes_to_the_public_root_with_the_demo_header(
    catalog: Catalog,
) -> None:
    planned = apply_plans(catalog, {"COINGECKO_DEMO_API_KEY": "CG-demo"})
    p = planned.provider("coingecko")
    spec = build_request(p, adapter_for(p.family), catalog.assets, key="CG-demo")
    assert spec.url == "https://api.coingecko.com/api/v3/coins/markets"
    assert spec.headers["x-cg-demo-api-key"] == "CG-demo"
    assert "x-cg-pro-api-key" not in spec.headers


def test_coingecko_pro_key_goes_to_the_pro_root_with_the_pro_header(catalog: Catalog) -> None:
    keys = {"COINGECKO_PRO_API_KEY": "CG-pro"}
    planned = apply_plans(catalog, keys, coingecko_plan="pro", coingecko_monthly_calls=500_000)
    for pid in _CG:
        p = planned.provider(pid)
        assert p.auth.env == "COINGECKO_PRO_API_KEY"
        spec = build_request(p, adapter_for(p.family), catalog.assets, key="CG-pro")
        assert spec.url.startswith("https://pro-api.coingecko.com/api/v3/")
        assert spec.headers["x-cg-pro-api-key"] == "CG-pro"
        assert "x-cg-demo-api-key" not in spec.headers


@pytest.mark.parametrize("allowance", [10_000, 30_000, 100_000])
def test_a_keyed_coingecko_install_never_runs_out_of_its_monthly_allowance(
    allowance: int, catalog: Catalog
) -> None:
    planned = apply_plans(
        catalog, {"COINGECKO_DEMO_API_KEY": "CG-demo"}, coingecko_monthly_calls=allowance
    )
    entries = [p for p in planned.providers if p.family.startswith("coingecko_")]
    assert len(entries) == len(_CG)
    month_s = 30 * 86400
    calls = sum(month_s / p.poll_interval_s for p in entries)
    assert calls <= allowance * 1.0001
    for p in entries:
        assert p.poll_interval_s >= len(entries) * month_s / allowance - 1e-9
    assert coingecko_interval_s(3, 10_000) == pytest.approx(777.6)
    assert IngestSettings().coingecko_monthly_calls == 10_000
    assert IngestSettings().coingecko_plan == "demo"


@pytest.mark.parametrize(
    ("name", "status", "expected"),
    [
        ("coingecko_markets.invalidkey.json", 401, HttpStatusError),  # bad key: not data
        ("coingecko_markets.ratelimit.json", 429, RateLimited),  # allowance or minute cap
    ],
)
def test_coingecko_auth_and_rate_errors_by_status(
    name: str, status: int, expected: type[Exception], *, parse: Any, recorded: Any
) -> None:
    with pytest.raises(expected):
        parse("coingecko_markets", recorded(name), status=status)


@pytest.mark.parametrize(
    ("name", "status", "expected"),
    [
        ("coinmarketcap_quotes.invalidkey.json", 401, HttpStatusError),
        ("coinmarketcap_quotes.keymissing.json", 401, HttpStatusError),
        ("coinmarketcap_quotes.monthly.json", 429, RateLimited),
        ("coinmarketcap_quotes.minutelimit.json", 429, RateLimited),
    ],
)
def test_coinmarketcap_auth_and_rate_errors_by_status(
    name: str, status: int, expected: type[Exception], *, parse: Any, recorded: Any
) -> None:
    with pytest.raises(expected):
        parse("coinmarketcap_quotes", recorded(name), status=status)


# -- Bybit --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{"content-type": "text/plain"}, {"content-type": "text/html; charset=utf-8"}]
)
def test_bybit_403_access_too_frequent_is_rate_limited_for_ten_minutes(
    headers: dict[str, str], *, parse: Any, recorded: Any, now: float
) -> None:
    with pytest.raises(RateLimited) as caught:
        parse("bybit_tickers", recorded("bybit_tickers.ipban.txt"), status=403, headers=headers)
    failure = caught.value
    assert failure.outcome == "rate_limited"
    assert failure.retry_after_s == 600.0
    assert "access too frequent" in failure.detail
    assert status_for(failure.outcome) == "rate_limited"  # not offline
    # the scheduler honours the ban; the breaker does not trip, however many bans
    breaker = CircuitBreaker(
        failure_threshold=3, open_base_s=30, open_max_s=600, rng=random.Random(0)
    )
    for _ in range(5):
        breaker.record_rate_limited()
    assert breaker.state == "closed"
    rng = random.Random(1)
    due = next_poll_at(now, 15.0, "rate_limited", timing=PollTiming(), rng=rng, retry_after_s=600.0)
    assert due - now >= 600.0


def test_bybit_longer_retry_after_wins_and_other_providers_403_stays_an_http_error(
    *, parse: Any, recorded: Any
) -> None:
    with pytest.raises(RateLimited) as caught:
        parse(
            "bybit_tickers",
            recorded("bybit_tickers.ipban.txt"),
            status=403,
            headers={"retry-after": "1800"},
        )
    assert caught.value.retry_after_s == 1800.0
    with pytest.raises(HttpStatusError):
        parse("okx_tickers", recorded("bybit_tickers.ipban.txt"), status=403)


# -- Kraken -------------------------------------------------------------------------------------


def test_kraken_today_open_never_becomes_a_24h_change(*, parse: Any) -> None:
    body = (
        b'{"error": [], "result": {"XXBTZUSD": {"a": ["43252.1", "1", "1.000"], '
        b'"b": ["43251.9", "2", "2.000"], "c": ["43252.0", "0.005"], "v": ["10", "2000"], '
        b'"p": ["43000", "43100"], "t": [1, 2], "l": ["42000", "42000"], '
        b'"h": ["44000", "44000"], "o": "30000.0"}}}'
    )
    [quote] = parse("kraken_ticker", body).quotes
    assert quote.price == 43252.0
    assert quote.change_24h is None  # "o" is since 00:00 UTC: not a 24 h reference
    assert quote.volume_24h == pytest.approx(2000 * 43100)


def test_kraken_asks_only_for_pairs_it_lists(catalog: Catalog) -> None:
    provider = catalog.provider("kraken")
    spec = build_request(provider, adapter_for(provider.family), catalog.assets)
    asked = spec.params["pair"].split(",")
    listed = {f"{a.ids['kraken']}USD" for a in catalog.assets if "kraken" in a.ids}
    assert set(asked) == listed
    assert "BNBUSD" not in asked
