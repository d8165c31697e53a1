"""RSS 0.9x/1.0/2.0 and Atom through feedparser, after refusing XML entity declarations.

Always pass bytes: a ``str`` starting with ``http`` makes feedparser fetch it (FIELD-NOTES).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import feedparser

from digest.errors import ParseError
from digest.ingest.parse.entries import author_names, build_entry, find_doi, language_tag, unique_entries
from digest.ingest.parse.html import plain_text
from digest.ingest.parse.urls import canonical_url
from digest.records import ParsedEntry, ParsedFeed

# Entities can only be declared in the prolog; a real feed's prolog is a few hundred bytes.
_PROLOG_BYTES = 64 * 1024
_PROLOG_SKIP = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ELEMENT_START = re.compile(rb"<[A-Za-z_:]")

_ARXIV_ABS = re.compile(r"https?://(?:export\.)?arxiv\.org/abs/(.+?)(?:v\d+)?", re.IGNORECASE)


def parse_xml_feed(content: bytes, url: str, content_type: str) -> ParsedFeed:
    """An RSS or Atom document fetched from ``url``. Raises ``ParseError`` when it holds no feed."""
    _refuse_entity_declarations(content)
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(
        content, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    warning = _bozo_text(parsed)
    if not parsed.entries and not (parsed.get("version") or parsed.feed.get("title")):
        if _looks_like_html(content):
            raise ParseError("this is an HTML page, not a feed")
        raise ParseError(f"not a feed: {warning or 'no entries and no feed title'}")
    return _feed_from_feedparser(parsed, url, warning)


# --- guards ---------------------------------------------------------------------------------------


def _refuse_entity_declarations(content: bytes) -> None:
    """Refuse DTD entity declarations before feedparser sees them ("billion laughs", XXE).

    Entities can only be declared in a DOCTYPE's internal subset, which comes before the root element.
    We walk the prolog (XML declaration, PIs, comments) instead of searching the whole head, so a feed
    quoting ``<!ENTITY`` in a post is not refused; a DOCTYPE without an internal subset (RSS 0.91's
    Netscape DTD, XHTML) passes. A prolog longer than we look at is refused, as it could hide one.
    """
    # BOMs and NULs out: UTF-16/32 markup then reads as ASCII bytes.
    head = content[:_PROLOG_BYTES].replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf\xfe\xff")
    position = 0
    while (item := _PROLOG_SKIP.match(head, position)) is not None:
        position = item.end()
    if _DOCTYPE.match(head, position):
        subset = head.find(b"[", position)
        declaration_end = head.find(b">", position)
        has_subset = subset != -1 and (declaration_end == -1 or subset < declaration_end)
        # Inside the subset, quoted values can hold "]>", so search the whole document, not to the end.
        if has_subset and _ENTITY_DECLARATION.search(content.replace(b"\x00", b"")):
            raise ParseError(
                "refused: the document declares XML entities (<!ENTITY>), which can expand "
                "without bound or read local files"
            )
    elif len(content) > _PROLOG_BYTES and not _ELEMENT_START.match(head, position):
        raise ParseError(f"not a feed: no XML element in the first {_PROLOG_BYTES // 1024} KB")


def _looks_like_html(content: bytes) -> bool:
    head = content[:2048].lower()
    return b"<html" in head or b"<!doctype html" in head


def _bozo_text(parsed: Mapping[str, Any]) -> str | None:
    if not parsed.get("bozo"):
        return None
    exception = parsed.get("bozo_exception")
    # A missing or generic Content-Type is the server's slip, not the feed's.
    if isinstance(exception, feedparser.NonXMLContentType):
        return None
    return f"{type(exception).__name__}: {exception}" if exception else "malformed feed"


# --- feedparser's dicts -> records ----------------------------------------------------------------


def _feed_from_feedparser(parsed: Mapping[str, Any], url: str, warning: str | None) -> ParsedFeed:
    feed = parsed["feed"]
    language = language_tag(feed.get("language"))
    # RFC 4287 §4.2.1: an Atom entry without authors has the feed's. RSS has no such rule.
    atom = str(parsed.get("version", "")).startswith("atom")
    inherited = author_names(feed.get("authors", ())) if atom else ()
    entries = unique_entries(
        _entry_from_feedparser(entry, url, language, inherited, atom=atom) for entry in parsed["entries"]
    )
    return ParsedFeed(
        title=_title(feed, atom=atom),
        link=canonical_url(feed.get("link", ""), url),
        entries=tuple(entries),
        warning=warning,
        ttl_minutes=_ttl(feed.get("ttl")),
        language=language,
    )


def _entry_from_feedparser(
    entry: Mapping[str, Any],
    feed_url: str,
    feed_language: str | None,
    feed_authors: tuple[str, ...],
    *,
    atom: bool,
) -> ParsedEntry:
    url = canonical_url(entry.get("link", ""), feed_url)
    title_detail = entry.get("title_detail", {})
    body = _body_detail(entry)
    details = (title_detail, body or {})
    arxiv = _ARXIV_ABS.fullmatch(entry.get("id", ""))
    return build_entry(
        raw_id=entry.get("id"),
        url=url,
        title=_title(entry, atom=atom),
        body_html=_detail_html(body),
        # An explicit xml:base wins (XML Base §4.2); otherwise authors wrote links relative to the post.
        html_base=body["base"] if body and body.get("base", feed_url) != feed_url else url or feed_url,
        authors=author_names(entry.get("authors", ())) or feed_authors,
        published_at=_struct_date(entry.get("published_parsed") or entry.get("updated_parsed")),
        language=next((lang for d in details if (lang := language_tag(d.get("language")))), feed_language),
        external_id=f"arxiv:{arxiv.group(1)}" if arxiv else _doi_id(entry),
        category=entry.get("arxiv_primary_category", {}).get("term") if arxiv else None,
        discussion_url=canonical_url(entry.get("comments", ""), feed_url),
    )


def _title(holder: Mapping[str, Any], *, atom: bool) -> str:
    # Only Atom declares a title's type (RFC 4287 §3.1); RSS titles are guessed, as feeds put HTML in them.
    declared = "html" in holder.get("title_detail", {}).get("type", "")
    return plain_text(holder.get("title", ""), markup=declared if atom else None)


def _body_detail(entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The summary, else the first content: what a digest shows under the title."""
    for detail in (entry.get("summary_detail"), *entry.get("content", ())):
        if detail and detail.get("value"):
            return detail  # type: ignore[no-any-return]
    return None


def _detail_html(detail: Mapping[str, Any] | None) -> str:
    if not detail:
        return ""
    value = str(detail["value"])
    return value if "html" in detail.get("type", "text/html") else html.escape(value)


def _doi_id(entry: Mapping[str, Any]) -> str | None:
    candidates = [(entry.get("prism_doi"), True), (entry.get("dc_identifier"), False)]
    candidates += [(link.get("href"), False) for link in entry.get("links", ())]
    doi = next((doi for value, bare in candidates if (doi := find_doi(value, bare=bare))), None)
    return f"doi:{doi}" if doi else None


def _struct_date(value: Sequence[int] | None) -> datetime | None:
    # feedparser's *_parsed values are already UTC.
    if not value:
        return None
    year, month, day, hour, minute, second = value[:6]
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def _ttl(value: object) -> int | None:
    text = str(value).strip() if value is not None else ""
    # Nine digits at most: int() of a huge digit string is slow or refused (CVE-2020-10735).
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None
