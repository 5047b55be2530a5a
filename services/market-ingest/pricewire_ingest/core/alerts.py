"""Alerts: price thresholds crossed, large moves within a window, stale prices, provider outages
(batched, so a network blip that takes 40 providers down is one alert, not 40) and shifts of the
Fear & Greed index, and dislocations (the upstreams of a symbol disagree: its consensus
``confidence_pct`` crossed ``dislocation_pct``; cleared at ``dislocation_clear_pct``, lower, so a
confidence hovering at the threshold alerts once). Messages in Persian (the guide's language) or
English.

Threshold crossings use an *anchor* per symbol that only moves once the price has moved more than
``hysteresis_pct`` away from it: a price wobbling around 45,000 is one alert, not one per tick.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Alert", "AlertEngine", "AlertRules", "persian_digits"]

Severity = Literal["info", "warning", "critical"]
Locale = Literal["fa", "en"]

_FA_DIGITS = str.maketrans("0123456789.", "۰۱۲۳۴۵۶۷۸۹٫")


def persian_digits(text: str) -> str:
    """Western digits and point as Persian ones.

    >>> persian_digits("45000.5")
    '۴۵۰۰۰٫۵'
    """
    return text.translate(_FA_DIGITS)


def _number(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.10g}"


@dataclass(frozen=True, slots=True)
class Alert:
    alert_type: str
    severity: Severity
    message: str
    symbol: str | None = None
    provider_id: str | None = None
    value: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRules:
    levels: Mapping[str, Sequence[float]] = field(default_factory=dict)
    steps: Mapping[str, float] = field(default_factory=dict)  #: every multiple is a level
    hysteresis_pct: float = 0.2
    move_pct: float = 3.0
    move_critical_pct: float = 7.0
    move_window_s: float = 300.0
    cooldown_s: float = 900.0
    outage_batch_max: int = 3
    outage_critical_share: float = 0.25
    dislocation_pct: float = 0.5  #: 0: no dislocation alerts
    dislocation_clear_pct: float = 0.25
    locale: Locale = "fa"


_TEXT: dict[str, dict[Locale, str]] = {
    "up": {
        "fa": "قیمت {name} از {level} دلار عبور کرد",
        "en": "{name} price crossed above ${level}",
    },
    "down": {
        "fa": "قیمت {name} به زیر {level} دلار رسید",
        "en": "{name} price fell below ${level}",
    },
    "move_up": {
        "fa": "قیمت {name} در {minutes} دقیقه {pct}٪ افزایش یافت",
        "en": "{name} price rose {pct}% in {minutes} minutes",
    },
    "move_down": {
        "fa": "قیمت {name} در {minutes} دقیقه {pct}٪ کاهش یافت",
        "en": "{name} price fell {pct}% in {minutes} minutes",
    },
    "stale": {
        "fa": "قیمت {name} به‌روز نیست: منابع تازهٔ کافی در دسترس نیست",
        "en": "{name} price is stale: too few fresh sources",
    },
    "fresh": {"fa": "قیمت {name} دوباره به‌روز است", "en": "{name} price is fresh again"},
    "dislocation": {
        "fa": "منابع قیمت {name} هم‌خوان نیستند: بازهٔ اطمینان ±{pct}٪",
        "en": "{name} sources disagree: confidence ±{pct}%",
    },
    "dislocation_cleared": {
        "fa": "منابع قیمت {name} دوباره هم‌خوان هستند (±{pct}٪)",
        "en": "{name} sources agree again (confidence ±{pct}%)",
    },
    "outage": {"fa": "ارائه‌دهندهٔ {name} از دسترس خارج شد", "en": "provider {name} is down"},
    "outages": {"fa": "{count} ارائه‌دهنده از دسترس خارج شدند", "en": "{count} providers are down"},
    "recovered": {"fa": "ارائه‌دهندهٔ {name} دوباره در دسترس است", "en": "provider {name} is back"},
    "recoveries": {
        "fa": "{count} ارائه‌دهنده دوباره در دسترس هستند",
        "en": "{count} providers are back",
    },
    "sentiment": {
        "fa": "شاخص ترس و طمع بازار: {value} ({label})",
        "en": "Crypto Fear & Greed index: {value} ({label})",
    },
}


class AlertEngine:
    def __init__(self, rules: AlertRules, *, names: Mapping[str, tuple[str, str]]) -> None:
        """``names``: symbol -> (English name, Persian name)."""
        self.rules = rules
        self.names = names
        self._anchor: dict[str, float] = {}
        self._history: dict[str, deque[tuple[float, float]]] = {}
        self._last_fired: dict[tuple[str, ...], float] = {}
        self._stale: dict[str, bool] = {}
        self._dislocated: dict[str, bool] = {}
        self._down: list[tuple[str, str]] = []
        self._up: list[tuple[str, str]] = []
        self._sentiment: str | None = None

    # -- wording -------------------------------------------------------------------------
    def _say(self, key: str, **values: object) -> str:
        locale = self.rules.locale
        shown = {
            k: persian_digits(str(v)) if locale == "fa" and isinstance(v, str | int | float) else v
            for k, v in values.items()
        }
        return _TEXT[key][locale].format(**shown)

    def _name(self, symbol: str) -> str:
        en, fa = self.names.get(symbol, (symbol, symbol))
        return fa if self.rules.locale == "fa" else en

    def _cooled(self, key: tuple[str, ...], now: float) -> bool:
        last = self._last_fired.get(key)
        if last is not None and now - last < self.rules.cooldown_s:
            return False
        self._last_fired[key] = now
        return True

    # -- prices --------------------------------------------------------------------------
    def levels_between(self, symbol: str, low: float, high: float) -> list[float]:
        """Configured levels L with low < L <= high."""
        found = [lv for lv in self.rules.levels.get(symbol, ()) if low < lv <= high]
        step = self.rules.steps.get(symbol)
        if step and step > 0:
            first = math.floor(low / step) + 1
            last = math.floor(high / step)
            # a jump across thousands of levels (a bad step setting) is capped
            found += [k * step for k in range(first, min(last, first + 1000) + 1)]
        return sorted(set(found))

    def on_price(self, symbol: str, price: float, now: float) -> list[Alert]:
        alerts = self._threshold(symbol, price, now)
        alerts += self._move(symbol, price, now)
        return alerts

    def _threshold(self, symbol: str, price: float, now: float) -> list[Alert]:
        anchor = self._anchor.get(symbol)
        if anchor is None:
            self._anchor[symbol] = price
            return []
        if abs(price - anchor) < anchor * self.rules.hysteresis_pct / 100.0:
            return []
        self._anchor[symbol] = price
        up = price > anchor
        crossed = self.levels_between(symbol, *((anchor, price) if up else (price, anchor)))
        if not crossed:
            return []
        # a jump across several levels reports the one nearest the new price
        level = crossed[-1] if up else crossed[0]
        if not self._cooled(("level", symbol, str(level), str(up)), now):
            return []
        text = self._say("up" if up else "down", name=self._name(symbol), level=_number(level))
        return [Alert("price_threshold", "info", text, symbol=symbol, value=level)]

    def _move(self, symbol: str, price: float, now: float) -> list[Alert]:
        history = self._history.setdefault(symbol, deque(maxlen=4096))
        history.append((now, price))
        while history and now - history[0][0] > self.rules.move_window_s:
            history.popleft()
        base_time, base = history[0]
        pct = (price / base - 1.0) * 100.0
        if abs(pct) < self.rules.move_pct or not self._cooled(("move", symbol), now):
            return []
        history.clear()
        history.append((now, price))
        severity: Severity = "critical" if abs(pct) >= self.rules.move_critical_pct else "warning"
        minutes = max(1, round((now - base_time) / 60))
        text = self._say(
            "move_up" if pct > 0 else "move_down",
            name=self._name(symbol),
            pct=f"{abs(pct):.1f}",
            minutes=minutes,
        )
        return [Alert("price_move", severity, text, symbol=symbol, value=round(pct, 2))]

    def on_stale(self, symbol: str, stale: bool, now: float) -> list[Alert]:
        """An alert when a symbol turns stale (critical) or fresh again (info)."""
        was = self._stale.get(symbol)
        self._stale[symbol] = stale
        if (was is None and not stale) or was == stale:
            return []
        if stale:
            text = self._say("stale", name=self._name(symbol))
            return [Alert("price_stale", "critical", text, symbol=symbol)]
        text = self._say("fresh", name=self._name(symbol))
        return [Alert("price_fresh", "info", text, symbol=symbol)]

    def on_confidence(self, symbol: str, confidence_pct: float) -> list[Alert]:
        """``dislocation`` (warning) when ``confidence_pct`` reaches ``dislocation_pct``;
        ``dislocation_cleared`` (info) once it is back at or below ``dislocation_clear_pct``."""
        threshold = self.rules.dislocation_pct
        if threshold <= 0 or not math.isfinite(confidence_pct):
            return []
        was = self._dislocated.get(symbol, False)
        severity: Severity
        if not was and confidence_pct >= threshold:
            kind, severity = "dislocation", "warning"
        elif was and confidence_pct <= self.rules.dislocation_clear_pct:
            kind, severity = "dislocation_cleared", "info"
        else:
            return []
        self._dislocated[symbol] = not was
        text = self._say(kind, name=self._name(symbol), pct=f"{confidence_pct:.2f}")
        return [Alert(kind, severity, text, symbol=symbol, value=round(confidence_pct, 4))]

    # -- providers -----------------------------------------------------------------------
    def on_breaker(self, provider_id: str, name: str, *, opened: bool, now: float) -> None:
        """Queue an outage (breaker opened) or recovery (closed after being open)."""
        if opened:
            if self._cooled(("outage", provider_id), now):
                self._down.append((provider_id, name))
        else:
            self._up.append((provider_id, name))

    def flush_providers(self, *, polled_total: int) -> list[Alert]:
        """The queued provider alerts: one each, or one summary when there are many."""
        alerts: list[Alert] = []
        down, self._down = self._down, []
        up, self._up = self._up, []
        if len(down) > self.rules.outage_batch_max:
            share = len(down) / max(polled_total, 1)
            severity: Severity = (
                "critical" if share >= self.rules.outage_critical_share else "warning"
            )
            text = self._say("outages", count=len(down))
            alerts.append(Alert("provider_outage", severity, text, value=float(len(down))))
        else:
            alerts += [
                Alert("provider_outage", "warning", self._say("outage", name=name), provider_id=pid)
                for pid, name in down
            ]
        if len(up) > self.rules.outage_batch_max:
            text = self._say("recoveries", count=len(up))
            alerts.append(Alert("provider_recovered", "info", text, value=float(len(up))))
        else:
            alerts += [
                Alert(
                    "provider_recovered", "info", self._say("recovered", name=name), provider_id=pid
                )
                for pid, name in up
            ]
        return alerts

    # -- sentiment -----------------------------------------------------------------------
    def on_sentiment(self, value: int, label: str) -> list[Alert]:
        """An alert when the Fear & Greed classification changes (not on the first reading)."""
        previous, self._sentiment = self._sentiment, label
        if previous is None or previous == label:
            return []
        text = self._say("sentiment", value=value, label=label)
        return [Alert("sentiment_shift", "info", text, value=float(value))]
