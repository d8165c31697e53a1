"""JSON Feed 1.0/1.1 (https://www.jsonfeed.org/version/1.1/), which feedparser does not read."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from digest.errors import ParseError
from digest.ingest.parse.entries import author_names, build_entry, find_doi, language_tag, unique_entries
from digest.ingest.parse.html import plain_text
from digest.ingest.parse.urls import canonical_url
from digest.records import ParsedEntry, ParsedFeed


def looks_like_json(content: bytes, content_type: str) -> bool:
    return "json" in content_type.lower() or content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


def parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    try:
        document = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"broken JSON feed: {exc}") from None
    if not isinstance(document, dict) or "jsonfeed.org/version" not in str(document.get("version", "")):
        raise ParseError("JSON document is not a JSON Feed (no jsonfeed.org version)")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError("JSON Feed has no items list")
    language = language_tag(document.get("language"))
    authors = _json_authors(document)
    entries = unique_entries(
        _entry_from_json(item, url, language, authors) for item in items if isinstance(item, dict)
    )
    return ParsedFeed(
        title=plain_text(_text(document.get("title"))),
        link=canonical_url(_text(document.get("home_page_url")), url),
        entries=tuple(entries),
        language=language,
    )


def _entry_from_json(
    item: Mapping[str, Any], feed_url: str, feed_language: str | None, feed_authors: tuple[str, ...]
) -> ParsedEntry:
    url = canonical_url(_text(item.get("url")) or _text(item.get("external_url")), feed_url)
    # "summary" and "content_text" are plain text in JSON Feed; only "content_html" is HTML.
    plain = _text(item.get("summary")) or _text(item.get("content_text"))
    body = _text(item.get("content_html")) or html.escape(plain)
    raw_id = item.get("id")
    return build_entry(
        # The spec says a string; numbers are common and stable, anything else is no id.
        raw_id=str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None,
        url=url,
        title=plain_text(_text(item.get("title"))),
        body_html=body,
        html_base=url or feed_url,
        # 1.1: an item without authors has the feed's.
        authors=_json_authors(item) or feed_authors,
        published_at=_json_date(item.get("date_published") or item.get("date_modified")),
        language=language_tag(item.get("language")) or feed_language,
        external_id=f"doi:{doi}" if (doi := find_doi(item.get("url"), bare=False)) else None,
    )


def _text(value: Any) -> str:
    """A string field, or "" when the feed put a list, number or object there: ``str(["a"])`` would
    otherwise become a title or a URL like ``http://host/['a']`` (issue 14, finding 12)."""
    return value if isinstance(value, str) else ""


def _json_authors(holder: Mapping[str, Any]) -> tuple[str, ...]:
    # "authors" (1.1) replaces "author" (1.0).
    authors = holder.get("authors") or ([holder["author"]] if isinstance(holder.get("author"), dict) else [])
    return author_names(a for a in authors if isinstance(a, dict))


def _json_date(value: Any) -> datetime | None:
    """RFC 3339 as the spec says, or RFC 822 as some generators write."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
