"""The only module that imports feedparser: feed bytes -> ``ParsedFeed``. Pure.

RSS 0.9x/1.0/2.0 and Atom go through feedparser (which also sniffs encodings and resolves relative
links against the document URL); JSON Feed 1.x, which feedparser does not read, is parsed here.
Always pass bytes: a ``str`` starting with ``http`` makes feedparser fetch it (FIELD-NOTES).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import feedparser

from digest.errors import ParseError
from digest.records import ParsedEntry, ParsedFeed

MAX_SUMMARY = 1200
MAX_TITLE = 500
_SPACE = re.compile(r"\s+")
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid)=", re.IGNORECASE)


def parse_feed(content: bytes, *, url: str, content_type: str = "") -> ParsedFeed:
    """Parse a feed document fetched from ``url``. Raises ``ParseError`` when it holds no feed."""
    if not content.strip():
        raise ParseError("the server sent an empty body")
    if _looks_like_json(content, content_type):
        return _parse_json_feed(content, url)
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(
        content, response_headers=headers, sanitize_html=False, resolve_relative_uris=True
    )
    warning = _bozo_text(parsed)
    if not parsed.entries and not parsed.feed.get("title"):
        if _looks_like_html(content):
            raise ParseError("this is an HTML page, not a feed")
        raise ParseError(f"not a feed: {warning or 'no entries and no feed title'}")
    entries = _unique(_entry_from_feedparser(entry, url) for entry in parsed.entries)
    return ParsedFeed(
        title=_text(parsed.feed.get("title", ""), MAX_TITLE),
        link=parsed.feed.get("link"),
        entries=tuple(entries),
        warning=warning,
    )


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, white space folded."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return _SPACE.sub(" ", "".join(extractor.parts)).strip()


def story_key(url: str | None, title: str) -> str:
    """The key shared by copies of one story in several feeds: its URL without tracking noise, else title."""
    if url:
        parts = urlsplit(url)
        host = (parts.hostname or "").removeprefix("www.")
        query = "&".join(p for p in parts.query.split("&") if p and not _TRACKING.match(p))
        basis = urlunsplit(("", host, parts.path.rstrip("/"), query, ""))
    else:
        basis = _SPACE.sub(" ", title.casefold()).strip()
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "template"})
    _BREAK = frozenset({"p", "br", "div", "li", "h1", "h2", "h3", "h4", "tr", "blockquote", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BREAK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _text(value: str, limit: int) -> str:
    text = html_to_text(value) if "<" in value or "&" in value else _SPACE.sub(" ", value).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _entry_from_feedparser(entry: Mapping[str, Any], feed_url: str) -> ParsedEntry:
    link = entry.get("link") or None
    title = _text(entry.get("title", ""), MAX_TITLE)
    body = ""
    if entry.get("summary"):
        body = entry["summary"]
    elif entry.get("content"):
        body = entry["content"][0].get("value", "")
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    return _entry(
        raw_id=entry.get("id") or link,
        url=urljoin(feed_url, link) if link else None,
        title=title,
        summary=_text(body, MAX_SUMMARY),
        authors=tuple(a["name"] for a in entry.get("authors", ()) if a.get("name")),
        published_at=datetime.fromtimestamp(calendar.timegm(published), UTC) if published else None,
    )


def _entry(
    *,
    raw_id: str | None,
    url: str | None,
    title: str,
    summary: str,
    authors: tuple[str, ...],
    published_at: datetime | None,
) -> ParsedEntry:
    basis = (
        raw_id or url or f"{title}\x00{published_at.isoformat() if published_at else ''}\x00{summary[:200]}"
    )
    return ParsedEntry(
        entry_key=hashlib.sha256(basis.encode()).hexdigest()[:40],
        url=url,
        title=title or (summary[:80] + "…" if len(summary) > 80 else summary) or "(untitled)",
        summary=summary,
        authors=authors,
        published_at=published_at,
    )


def _unique(entries: Iterable[ParsedEntry]) -> list[ParsedEntry]:
    """Feeds repeat entries; the first copy wins."""
    seen: dict[str, ParsedEntry] = {}
    for entry in entries:
        seen.setdefault(entry.entry_key, entry)
    return list(seen.values())


def _looks_like_json(content: bytes, content_type: str) -> bool:
    return "json" in content_type.lower() or content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _looks_like_html(content: bytes) -> bool:
    head = content[:2048].lower()
    return b"<html" in head or b"<!doctype html" in head


def _parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    try:
        document = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"broken JSON feed: {exc}") from None
    if not isinstance(document, dict) or "jsonfeed.org/version" not in str(document.get("version", "")):
        raise ParseError("JSON document is not a JSON Feed (no jsonfeed.org version)")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError("JSON Feed has no items list")
    entries = _unique(_entry_from_json(item, url) for item in items if isinstance(item, dict))
    return ParsedFeed(
        title=_text(str(document.get("title", "")), MAX_TITLE),
        link=document.get("home_page_url"),
        entries=tuple(entries),
    )


def _entry_from_json(item: Mapping[str, Any], feed_url: str) -> ParsedEntry:
    link = item.get("url") or item.get("external_url")
    body = item.get("summary") or item.get("content_html") or item.get("content_text") or ""
    authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else [])
    names = tuple(str(a["name"]) for a in authors if isinstance(a, dict) and a.get("name"))
    return _entry(
        raw_id=str(item["id"]) if item.get("id") is not None else None,
        url=urljoin(feed_url, str(link)) if link else None,
        title=_text(str(item.get("title", "")), MAX_TITLE),
        summary=_text(str(body), MAX_SUMMARY),
        authors=names,
        published_at=_iso_date(item.get("date_published") or item.get("date_modified")),
    )


def _iso_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bozo_text(parsed: Mapping[str, Any]) -> str | None:
    if not parsed.get("bozo"):
        return None
    exception = parsed.get("bozo_exception")
    # A missing or generic Content-Type is the server's slip, not the feed's.
    if isinstance(exception, feedparser.NonXMLContentType):
        return None
    return f"{type(exception).__name__}: {exception}" if exception else "malformed feed"


__all__ = ["html_to_text", "parse_feed", "story_key"]
