"""News and community sources: RSS/Atom feeds (parsed with feedparser), NewsAPI, CryptoPanic,
Reddit listings."""

from __future__ import annotations

import calendar
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
    body_kind = "body"

    def parse_body(self, response: RawResponse, ctx: ParseContext) -> PollData:
        if not response.body.strip():
            raise BadResponse("empty body")
        if HTML_START.match(response.body[:512]):
            raise BadResponse("an HTML page instead of a feed")
        parsed = feedparser.parse(response.body)
        if parsed.get("bozo") and not isinstance(parsed.get("bozo_exception"), _BENIGN):
            raise BadResponse(f"malformed feed: {parsed.get('bozo_exception')}")
        if not parsed.get("version"):
            raise BadResponse("not an RSS or Atom feed")
        entries = []
        for item in parsed.entries:
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


class CryptoPanicPosts(Adapter):
    """CryptoPanic ``/api/v1/posts/``: ``{"results": [{"title", "url", "published_at",
    "source": {"title", "domain"}}]}``."""

    family = "cryptopanic_posts"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and "results" not in data:
            message = str(data.get("info") or data.get("detail") or data.get("status") or data)
            lowered = message.lower()
            return RateLimited(message) if "limit" in lowered else BadResponse(message)
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
                    p.get("url"),
                    parse_iso_time(p.get("published_at")),
                    None,
                    source=f"{title} (via CryptoPanic)" if title else None,
                )
                if entry:
                    entries.append(entry)
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
