"""Alert rules: thresholds (with hysteresis), large moves, stale prices, provider outages
(batched), sentiment shifts; Persian and English wording."""

from __future__ import annotations

from pricewire_ingest.core.alerts import AlertEngine, AlertRules, persian_digits
from pricewire_ingest.core.news import NewsDeduplicator, canonical_url, clean_text, news_id

NAMES = {"BTC": ("Bitcoin", "بیت‌کوین"), "ETH": ("Ethereum", "اتریوم")}


def engine(**rules: object) -> AlertEngine:
    defaults: dict[str, object] = {"steps": {"BTC": 1000.0}, "cooldown_s": 600.0, "move_pct": 3.0}
    return AlertEngine(AlertRules(**{**defaults, **rules}), names=NAMES)  # type: ignore[arg-type]


def test_crossing_a_level_upward_is_the_guides_alert_in_persian() -> None:
    e = engine()
    assert e.on_price("BTC", 44900.0, 0.0) == []  # the first price only sets the anchor
    (alert,) = e.on_price("BTC", 45010.0, 1.0)
    assert alert.alert_type == "price_threshold"
    assert alert.severity == "info"
    assert alert.message == "قیمت بیت‌کوین از ۴۵۰۰۰ دلار عبور کرد"
    assert (alert.symbol, alert.value) == ("BTC", 45000.0)


def test_crossing_downward_and_english_wording() -> None:
    e = engine(locale="en")
    e.on_price("BTC", 45100.0, 0.0)
    (alert,) = e.on_price("BTC", 44950.0, 1.0)
    assert alert.message == "Bitcoin price fell below $45000"


def test_wobbling_around_a_level_alerts_once() -> None:
    e = engine(hysteresis_pct=0.2, cooldown_s=0.0)
    e.on_price("BTC", 44950.0, 0.0)
    alerts = []
    for t, price in enumerate([45001, 44999, 45002, 44998, 45003, 45000.5, 44999.5], start=1):
        alerts += e.on_price("BTC", float(price), float(t))
    assert alerts == []  # every move is inside the 0.2 % hysteresis
    alerts += e.on_price("BTC", 45100.0, 10.0)
    assert [a.value for a in alerts] == [45000.0]


def test_slow_drift_across_a_level_is_still_seen() -> None:
    e = engine(hysteresis_pct=0.2)
    e.on_price("BTC", 44900.0, 0.0)
    found = []
    price = 44900.0
    for t in range(1, 400):
        price += 1.0  # far below the hysteresis per tick
        found += e.on_price("BTC", price, float(t))
    assert [a.value for a in found if a.alert_type == "price_threshold"] == [45000.0]


def test_a_jump_over_several_levels_reports_the_nearest_one() -> None:
    e = engine()
    e.on_price("BTC", 42500.0, 0.0)
    alerts = e.on_price("BTC", 45500.0, 1.0)
    assert [a.value for a in alerts if a.alert_type == "price_threshold"] == [45000.0]


def test_explicit_levels_and_cooldown() -> None:
    e = engine(steps={}, levels={"ETH": [2300.0]}, cooldown_s=100.0, hysteresis_pct=0.0)
    e.on_price("ETH", 2290.0, 0.0)
    assert len(e.on_price("ETH", 2310.0, 1.0)) == 1
    e.on_price("ETH", 2290.0, 2.0)
    assert e.on_price("ETH", 2310.0, 3.0) == []  # same level, same direction, within cooldown
    e.on_price("ETH", 2290.0, 200.0)
    assert len(e.on_price("ETH", 2310.0, 201.0)) == 1


def test_large_move_within_the_window_is_a_warning_or_critical() -> None:
    e = engine(steps={}, move_pct=3.0, move_critical_pct=7.0, move_window_s=300.0, locale="en")
    e.on_price("BTC", 40000.0, 0.0)
    assert e.on_price("BTC", 41000.0, 60.0) == []
    (alert,) = e.on_price("BTC", 41300.0, 120.0)
    assert (alert.alert_type, alert.severity, alert.value) == ("price_move", "warning", 3.25)
    assert alert.message == "Bitcoin price rose 3.2% in 2 minutes"
    e2 = engine(steps={}, move_window_s=300.0)
    e2.on_price("ETH", 2000.0, 0.0)
    (crash,) = e2.on_price("ETH", 1800.0, 30.0)
    assert crash.severity == "critical"
    assert crash.message == "قیمت اتریوم در ۱ دقیقه ۱۰٫۰٪ کاهش یافت"


def test_a_move_spread_over_more_than_the_window_is_no_alert() -> None:
    e = engine(steps={}, move_window_s=300.0)
    price = 40000.0
    alerts = []
    for t in range(0, 3600, 60):
        alerts += e.on_price("BTC", price, float(t))
        price *= 1.004  # 0.4 % a minute: 2 % per window
    assert alerts == []


def test_stale_transitions_alert_once_each_way() -> None:
    e = engine(locale="en")
    assert e.on_stale("BTC", False, 0.0) == []
    (stale,) = e.on_stale("BTC", True, 1.0)
    assert (stale.alert_type, stale.severity) == ("price_stale", "critical")
    assert e.on_stale("BTC", True, 2.0) == []
    (fresh,) = e.on_stale("BTC", False, 3.0)
    assert (fresh.alert_type, fresh.severity) == ("price_fresh", "info")
    assert (
        engine().on_stale("ETH", True, 0.0)[0].alert_type == "price_stale"
    )  # stale from the start


def test_few_outages_alert_one_by_one_many_as_a_summary() -> None:
    e = engine(outage_batch_max=3, locale="en")
    e.on_breaker("kraken", "Kraken", opened=True, now=0.0)
    e.on_breaker("okx", "OKX", opened=True, now=0.0)
    alerts = e.flush_providers(polled_total=100)
    assert [(a.provider_id, a.message) for a in alerts] == [
        ("kraken", "provider Kraken is down"),
        ("okx", "provider OKX is down"),
    ]
    for i in range(40):
        e.on_breaker(f"p{i}", f"P{i}", opened=True, now=1.0)
    (summary,) = e.flush_providers(polled_total=100)
    assert (summary.message, summary.severity, summary.value) == (
        "40 providers are down",
        "critical",
        40.0,
    )
    assert e.flush_providers(polled_total=100) == []


def test_a_flapping_provider_alerts_once_per_cooldown_and_recovery_is_info() -> None:
    e = engine(cooldown_s=600.0)
    e.on_breaker("kraken", "Kraken", opened=True, now=0.0)
    e.on_breaker("kraken", "Kraken", opened=False, now=10.0)
    e.on_breaker("kraken", "Kraken", opened=True, now=20.0)
    alerts = e.flush_providers(polled_total=10)
    assert [a.alert_type for a in alerts] == ["provider_outage", "provider_recovered"]
    assert alerts[1].severity == "info"
    assert alerts[1].message == "ارائه‌دهندهٔ Kraken دوباره در دسترس است"


def test_sentiment_shift_alerts_on_a_change_of_class_only() -> None:
    e = engine(locale="en")
    assert e.on_sentiment(50, "Neutral") == []
    assert e.on_sentiment(52, "Neutral") == []
    (alert,) = e.on_sentiment(76, "Extreme Greed")
    assert alert.message == "Crypto Fear & Greed index: 76 (Extreme Greed)"


def test_persian_digits() -> None:
    assert persian_digits("45000") == "۴۵۰۰۰"
    assert persian_digits("3.5%") == "۳٫۵%"


# -- news ids ---------------------------------------------------------------------------------
def test_canonical_url_drops_what_does_not_identify_a_story() -> None:
    cases = {
        "https://www.coindesk.com/a/b/?utm_source=rss&utm_medium=x": "https://coindesk.com/a/b",
        "http://COINDESK.com/a/b#comments": "https://coindesk.com/a/b",
        "https://example.com/p?id=2&ref=tw&a=1": "https://example.com/p?a=1&id=2",
        "https://example.com:8443/x/": "https://example.com:8443/x",
        "https://example.com": "https://example.com/",
    }
    for url, canonical in cases.items():
        assert canonical_url(url) == canonical
    assert news_id("https://www.coindesk.com/a/?utm_source=rss") == news_id("http://coindesk.com/a")
    assert len(news_id("https://x.org/1")) == 16


def test_clean_text_strips_markup_and_limits_length() -> None:
    assert clean_text("<p>Hello&nbsp;<b>world</b> &amp; more</p>") == "Hello world & more"
    assert clean_text("   ") is None
    assert clean_text(None) is None
    long = clean_text("word " * 200, limit=50)
    assert long is not None and len(long) == 50 and long.endswith("…")


def test_deduplicator_remembers_a_bounded_number_of_ids() -> None:
    d = NewsDeduplicator(capacity=3)
    assert [d.first_time(i) for i in "abca"] == [True, True, True, False]
    d.remember(["d", "e"])
    assert "a" in d and "b" not in d and len(d) == 3


def test_dislocation_fires_once_and_clears_with_hysteresis() -> None:
    e = engine(dislocation_pct=0.5, dislocation_clear_pct=0.25, locale="en")
    kinds = []
    # confidence_pct per tick: hovering around the threshold alerts once; clears below 0.25
    for pct in (0.1, 0.3, 0.55, 0.49, 0.6, 0.3, 0.26, 0.2, 0.45, 0.5):
        kinds += [(a.alert_type, a.severity, a.value) for a in e.on_confidence("BTC", pct)]
    assert kinds == [
        ("dislocation", "warning", 0.55),
        ("dislocation_cleared", "info", 0.2),
        ("dislocation", "warning", 0.5),
    ]
    (alert,) = engine(dislocation_pct=0.5).on_confidence("ETH", 0.8)
    assert alert.symbol == "ETH"
    assert alert.message == "منابع قیمت اتریوم هم‌خوان نیستند: بازهٔ اطمینان ±۰٫۸۰٪"
    assert engine(dislocation_pct=0.0).on_confidence("BTC", 50.0) == []  # turned off
