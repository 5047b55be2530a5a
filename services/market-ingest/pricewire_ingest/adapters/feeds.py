"""News and community sources: RSS/Atom feeds (parsed with feedparser), NewsAPI, CryptoPanic,
Reddit listings."""

from __future__ import annotations

import calendar
import warnings
from typing import Any

import feedparser

from ..core.news import clean_text, news_id
from ..errors import BadResponse, PollFailure, RateLimited
from ..quotes import NewsEntry, PollData
from .base import HTML_START, Adapter, ParseContext, RawResponse, as_dict, as_list, parse_iso_time

__all__ = ["CryptoPanicPosts", "FeedAdapter", "NewsApiEverything", "RedditListing"]

#: feedparser flags these but the entries are fine
_BENIGN = (feedparser.CharacterEncodingOverride,)


def _entry(
    ctx: ParseContext,
    title: Any,
    url: Any,
    published: float | None,
    summary: Any,
    *,
    source: str | None = None,
) -> NewsEntry | None:
    title_text = clean_text(str(title) if title else None, limit=300)
    if not title_text or not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    return NewsEntry(
        id=news_id(url),
        title=title_text,
        url=url,
        source=source or ctx.provider_name,
        published_at=published,
        summary=clean_text(str(summary) if summary else None),
    )


class FeedAdapter(Adapter):
    """RSS 0.9x/1.0/2.0 and Atom, whatever the feed declares."""

    family = "rss"
    feeds = frozenset({"news"})
    body_kind = "body"

    def parse_body(self, response: RawResponse, ctx: ParseContext) -> PollData:
        if not response.body.strip():
            raise BadResponse("empty body")
        if HTML_START.match(response.body[:512]):
            raise BadResponse("an HTML page instead of a feed")
        try:
            parsed = feedparser.parse(response.body)
        except ValueError as exc:  # e.g. a NUL byte in a declared encoding
            raise BadResponse(f"malformed feed: {exc}") from exc
        if parsed.get("bozo") and not isinstance(parsed.get("bozo_exception"), _BENIGN):
            raise BadResponse(f"malformed feed: {parsed.get('bozo_exception')}")
        if not parsed.get("version"):
            raise BadResponse("not an RSS or Atom feed")
        entries = []
        for item in parsed.entries:
            with warnings.catch_warnings():
                # feedparser warns when updated_parsed falls back to published_parsed
                warnings.simplefilter("ignore", DeprecationWarning)
                when = item.get("published_parsed") or item.get("updated_parsed")
            entry = _entry(
                ctx,
                item.get("title"),
                item.get("link"),
                float(calendar.timegm(when)) if when else None,
                item.get("summary"),
            )
            if entry:
                entries.append(entry)
        return PollData(news=tuple(entries), items=len(parsed.entries))


class NewsApiEverything(Adapter):
    """newsapi.org ``/v2/everything``: ``{"status": "ok", "articles": [...]}``; errors
    ``{"status": "error", "code": "rateLimited", "message": ...}``."""

    family = "newsapi_everything"
    feeds = frozenset({"news"})

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and data.get("status") == "error":
            message = f"{data.get('code')}: {data.get('message')}"
            return (
                RateLimited(message) if data.get("code") == "rateLimited" else BadResponse(message)
            )
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        articles = as_list(as_dict(data, "body").get("articles"), "articles")
        entries = []
        for a in articles:
            if isinstance(a, dict):
                source = a.get("source")
                name = source.get("name") if isinstance(source, dict) else None
                entry = _entry(
                    ctx,
                    a.get("title"),
                    a.get("url"),
                    parse_iso_time(a.get("publishedAt")),
                    a.get("description"),
                    source=f"{name} (via NewsAPI)" if name else None,
                )
                if entry:
                    entries.append(entry)
        return PollData(news=tuple(entries), items=len(articles))


#: where CryptoPanic shows a post: linked by id (and slug) when the plan gives no URL
CRYPTOPANIC_POST_URL = "https://cryptopanic.com/news/{id}/{slug}"


def cryptopanic_link(post: dict[str, Any]) -> str | None:
    """The post's link: the article (``original_url``, Growth plans and up), CryptoPanic's own
    ``url``, or else the post's page on cryptopanic.com built from ``id`` and ``slug`` (the
    Developer plan sends neither URL).

    >>> cryptopanic_link({"id": 7, "slug": "btc-up", "url": None})
    'https://cryptopanic.com/news/7/btc-up'
    >>> cryptopanic_link({"title": "no id, no url"}) is None
    True
    """
    for key in ("original_url", "url"):
        value = post.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value
    post_id = post.get("id")
    if isinstance(post_id, bool) or not isinstance(post_id, int | str) or not str(post_id):
        return None
    if not str(post_id).isdigit():
        return None
    slug = post.get("slug")
    slug_text = slug if isinstance(slug, str) and slug.strip("/") else ""
    return CRYPTOPANIC_POST_URL.format(id=post_id, slug=slug_text.strip("/")).rstrip("/")


class CryptoPanicPosts(Adapter):
    """CryptoPanic developer API v2, ``/api/<plan>/v2/posts/``: ``{"results": [{"id", "slug",
    "title", "description", "published_at", "source": {"title", "domain"}, "original_url"?,
    "url"?}]}``. Which fields come depends on the plan: a post without a URL is linked by id;
    a non-empty answer none of whose posts is usable is a parse failure, not an empty success.
    Errors: ``{"status": "Incomplete", "info": ...}`` or ``{"detail": ...}`` (HTTP 401/403/429).
    """

    family = "cryptopanic_posts"
    feeds = frozenset({"news"})

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and "results" not in data:
            message = str(data.get("info") or data.get("detail") or data.get("status") or data)
            lowered = message.lower()
            limited = "limit" in lowered or "throttled" in lowered
            return RateLimited(message) if limited else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        posts = as_list(as_dict(data, "body").get("results"), "results")
        entries = []
        for p in posts:
            if isinstance(p, dict):
                source = p.get("source")
                title = source.get("title") if isinstance(source, dict) else None
                entry = _entry(
                    ctx,
                    p.get("title"),
                    cryptopanic_link(p),
                    parse_iso_time(p.get("published_at")),
                    p.get("description"),
                    source=f"{title} (via CryptoPanic)" if title else None,
                )
                if entry:
                    entries.append(entry)
        if posts and not entries:
            raise BadResponse(f"none of the {len(posts)} posts has a title and a link")
        return PollData(news=tuple(entries), items=len(posts))


class RedditListing(Adapter):
    """Reddit ``.json`` listings: ``{"kind": "Listing", "data": {"children": [...]}}``.
    Community chatter: counted for health, not republished as news."""

    family = "reddit_listing"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and "error" in data:
            message = f"{data.get('error')}: {data.get('message')}"
            return RateLimited(message) if data.get("error") == 429 else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        body = as_dict(data, "body")
        if body.get("kind") != "Listing":
            raise BadResponse(f"not a listing: kind={body.get('kind')!r}")
        children = as_list(as_dict(body.get("data"), "data").get("children"), "children")
        return PollData(items=len(children))
