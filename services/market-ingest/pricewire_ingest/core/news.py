"""News: one id per story whatever feed or tracking parameters carried it, and a bounded memory
of what was already published."""

from __future__ import annotations

import hashlib
import html
import re
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["NewsDeduplicator", "canonical_url", "clean_text", "news_id"]

_TRACKING = re.compile(
    r"^(utm_\w+|ref|ref_src|fbclid|gclid|mc_cid|mc_eid|cmpid|ocid|source)$", re.I
)
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def canonical_url(url: str) -> str:
    """The URL with what does not identify the story removed.

    >>> canonical_url("HTTP://www.CoinDesk.com/markets/2024/01/15/btc/?utm_source=rss&id=7#top")
    'https://coindesk.com/markets/2024/01/15/btc?id=7'
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query) if not _TRACKING.match(k))
    path = parts.path.rstrip("/") or "/"
    scheme = "https" if parts.scheme in ("http", "https", "") else parts.scheme.lower()
    return urlunsplit((scheme, host, path, urlencode(query), ""))


def news_id(url: str) -> str:
    """Stable id of a story: the first 16 hex digits of SHA-1 of its canonical URL."""
    return hashlib.sha1(canonical_url(url).encode(), usedforsecurity=False).hexdigest()[:16]


def clean_text(text: str | None, *, limit: int = 500) -> str | None:
    """Plain text from a feed's HTML fragment, whitespace collapsed, at most ``limit`` chars."""
    if not text:
        return None
    plain = _SPACE.sub(" ", html.unescape(_TAGS.sub(" ", text))).strip()
    if not plain:
        return None
    return plain if len(plain) <= limit else plain[: limit - 1].rstrip() + "…"


class NewsDeduplicator:
    """Remembers the last ``capacity`` story ids (least recently seen forgotten first)."""

    def __init__(self, capacity: int = 5000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._seen

    def remember(self, ids: Iterable[str]) -> None:
        for item_id in ids:
            self.first_time(item_id)

    def first_time(self, item_id: str) -> bool:
        """True the first time an id is seen; it is then remembered."""
        if item_id in self._seen:
            self._seen.move_to_end(item_id)
            return False
        self._seen[item_id] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True
