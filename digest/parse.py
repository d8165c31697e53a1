"""The only module that imports feedparser: feed bytes -> ``ParsedFeed``. Pure.

RSS 0.9x/1.0/2.0 and Atom go through feedparser (which also sniffs encodings); JSON Feed 1.x, which
feedparser does not read, is parsed here. Both adapters feed one entry builder, so every entry gets the
same canonical URL, safe HTML (nh3), plain text and stable key. Always pass bytes: a ``str`` starting
with ``http`` makes feedparser fetch it (FIELD-NOTES).

feedparser's own sanitiser and relative-URI resolver are switched off: they are about half of its cost
on RSS and nh3 does both jobs (issue 3).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import feedparser
import nh3

from digest.errors import ParseError
from digest.records import ParsedEntry, ParsedFeed

MAX_SUMMARY = 1200
MAX_SUMMARY_HTML = 20_000
MAX_TITLE = 500
# Raw HTML beyond this is never needed to fill MAX_SUMMARY_HTML; it bounds nh3's work on huge posts.
_MAX_HTML_INPUT = 10 * MAX_SUMMARY_HTML
# Entities can only be declared in the prolog; a real feed's prolog is a few hundred bytes.
_PROLOG_BYTES = 64 * 1024
_DISCOVERY_BYTES = 512 * 1024

_SPACE = re.compile(r"\s+")
_TRACKING_NAMES = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "ref_src",
        "_hsenc",
        "_hsmi",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/feed+json", "application/json"}
)
# feedparser leaves "Name (mailto:" of RSS 1.0's "Name (mailto:a@b)" creators.
_NAME_NOISE = re.compile(r"\s*\((?:mailto:)?\)?$", re.IGNORECASE)
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
_ARXIV_ABS = re.compile(r"https?://(?:export\.)?arxiv\.org/abs/(.+?)(?:v\d+)?", re.IGNORECASE)
_DOI_PREFIX = re.compile(r"doi:\s*|https?://(?:dx\.)?doi\.org/", re.IGNORECASE)
_DOI = re.compile(r"10\.\d{4,9}/\S+")

_PROLOG_SKIP = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ELEMENT_START = re.compile(rb"<[A-Za-z_:]")

# A space before each block tag keeps "<li>one</li><li>two</li>" from becoming "onetwo" once tags go.
_BLOCK_TAG = re.compile(
    r"<(?=/?(?:p|br|div|li|dd|dt|h[1-6]|tr|td|th|table|blockquote|pre|ul|ol|hr|section|article|figure)\b)",
    re.IGNORECASE,
)
# The same for the block tags the safe subset drops (kept ones stay blocks and need no space).
_DROPPED_BLOCK_TAG = re.compile(
    r"<(?=/?(?:div|dd|dt|h[156]|tr|td|th|table|hr|section|article|figure)\b)", re.IGNORECASE
)
_SAFE_TAGS = frozenset(
    {
        "p",
        "br",
        "a",
        "em",
        "strong",
        "b",
        "i",
        "code",
        "pre",
        "ul",
        "ol",
        "li",
        "blockquote",
        "h2",
        "h3",
        "h4",
    }
)
# Dropped with their content: code, and fallbacks (iframe/noscript text) that would read as stray prose.
_DROP_WITH_CONTENT = frozenset({"script", "style", "template", "iframe", "noscript", "object", "svg", "math"})
_TEXT_ONLY = nh3.Cleaner(tags=set(), clean_content_tags=_DROP_WITH_CONTENT, attributes={})


def parse_feed(content: bytes, *, url: str, content_type: str = "") -> ParsedFeed:
    """Parse a feed document fetched from ``url``. Raises ``ParseError`` when it holds no feed we read."""
    if not content.strip():
        raise ParseError("the server sent an empty body")
    if _looks_like_json(content, content_type):
        return _parse_json_feed(content, url)
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


def discover_feed_links(content: bytes, url: str) -> tuple[str, ...]:
    """Feed URLs an HTML page advertises with ``<link rel="alternate" type=...>``, in document order."""
    finder = _FeedLinkFinder()
    try:
        finder.feed(content[:_DISCOVERY_BYTES].decode("utf-8", "replace"))
        finder.close()
    except _EndOfHead:
        pass
    # The document's base URL is its first <base href>, wherever it sits (HTML "document base URL").
    base = urljoin(url, finder.base) if finder.base else url
    links = (canonical_url(href, base) for href in finder.hrefs)
    return tuple(dict.fromkeys(link for link in links if link))


def canonical_url(url: str, base: str) -> str | None:
    """``url`` resolved against ``base`` and normalised (RFC 3986 §6.2.2–6.2.3); None unless http(s).

    Scheme and host are lower-cased, the default port, the fragment and tracking parameters dropped;
    other query parameters stay, in order, as written.
    """
    if not url.strip():
        return None
    try:
        parts = urlsplit(urljoin(base, url.strip()))
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", _strip_tracking(parts.query), ""))


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment: tags and scripts dropped, entities decoded, white space folded."""
    text = html.unescape(_TEXT_ONLY.clean(_BLOCK_TAG.sub(" <", markup)))
    return _SPACE.sub(" ", text).strip()


def story_key(url: str | None, title: str) -> str:
    """The key shared by copies of one story in several feeds: its URL without tracking noise, else title."""
    if url:
        parts = urlsplit(url)
        host = (parts.hostname or "").removeprefix("www.")
        basis = urlunsplit(("", host, parts.path.rstrip("/"), _strip_tracking(parts.query), ""))
    else:
        basis = _SPACE.sub(" ", title.casefold()).strip()
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


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


def _looks_like_json(content: bytes, content_type: str) -> bool:
    return "json" in content_type.lower() or content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


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


# --- RSS and Atom (feedparser) --------------------------------------------------------------------


def _feed_from_feedparser(parsed: Mapping[str, Any], url: str, warning: str | None) -> ParsedFeed:
    feed = parsed["feed"]
    language = _language(feed.get("language"))
    # RFC 4287 §4.2.1: an Atom entry without authors has the feed's. RSS has no such rule.
    atom = str(parsed.get("version", "")).startswith("atom")
    inherited = _names(feed.get("authors", ())) if atom else ()
    entries = _unique(
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
    return _entry(
        raw_id=entry.get("id"),
        url=url,
        title=_title(entry, atom=atom),
        body_html=_detail_html(body),
        # An explicit xml:base wins (XML Base §4.2); otherwise authors wrote links relative to the post.
        html_base=body["base"] if body and body.get("base", feed_url) != feed_url else url or feed_url,
        authors=_names(entry.get("authors", ())) or feed_authors,
        published_at=_struct_date(entry.get("published_parsed") or entry.get("updated_parsed")),
        language=next((lang for d in details if (lang := _language(d.get("language")))), feed_language),
        external_id=f"arxiv:{arxiv.group(1)}" if arxiv else _doi_id(entry),
        category=entry.get("arxiv_primary_category", {}).get("term") if arxiv else None,
    )


def _title(holder: Mapping[str, Any], *, atom: bool) -> str:
    # Only Atom declares a title's type (RFC 4287 §3.1); RSS titles are guessed, as feeds put HTML in them.
    declared = "html" in holder.get("title_detail", {}).get("type", "")
    return _plain(holder.get("title", ""), markup=declared if atom else None)


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
    doi = next((doi for value, bare in candidates if (doi := _doi(value, bare=bare))), None)
    return f"doi:{doi}" if doi else None


def _doi(value: object, *, bare: bool) -> str | None:
    """A DOI from ``doi:10.…`` or a doi.org link; a bare ``10.…`` only where the element means DOI."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    prefix = _DOI_PREFIX.match(text)
    if not prefix and not bare:
        return None
    doi = unquote(text[prefix.end() :] if prefix else text).lower()
    return doi if _DOI.fullmatch(doi) else None


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


# --- JSON Feed 1.0/1.1 (https://www.jsonfeed.org/version/1.1/) -------------------------------------


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
    language = _language(document.get("language"))
    authors = _json_authors(document)
    entries = _unique(
        _entry_from_json(item, url, language, authors) for item in items if isinstance(item, dict)
    )
    return ParsedFeed(
        title=_plain(str(document.get("title", ""))),
        link=canonical_url(str(document.get("home_page_url") or ""), url),
        entries=tuple(entries),
        language=language,
    )


def _entry_from_json(
    item: Mapping[str, Any], feed_url: str, feed_language: str | None, feed_authors: tuple[str, ...]
) -> ParsedEntry:
    url = canonical_url(str(item.get("url") or item.get("external_url") or ""), feed_url)
    # "summary" and "content_text" are plain text in JSON Feed; only "content_html" is HTML.
    plain = item.get("summary") or item.get("content_text") or ""
    body = str(item["content_html"]) if item.get("content_html") else html.escape(str(plain))
    return _entry(
        raw_id=str(item["id"]) if item.get("id") is not None else None,
        url=url,
        title=_plain(str(item.get("title", ""))),
        body_html=body,
        html_base=url or feed_url,
        # 1.1: an item without authors has the feed's.
        authors=_json_authors(item) or feed_authors,
        published_at=_json_date(item.get("date_published") or item.get("date_modified")),
        language=_language(item.get("language")) or feed_language,
        external_id=f"doi:{doi}" if (doi := _doi(item.get("url"), bare=False)) else None,
    )


def _json_authors(holder: Mapping[str, Any]) -> tuple[str, ...]:
    # "authors" (1.1) replaces "author" (1.0).
    authors = holder.get("authors") or ([holder["author"]] if isinstance(holder.get("author"), dict) else [])
    return _names(a for a in authors if isinstance(a, dict))


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


# --- one entry ------------------------------------------------------------------------------------


def _entry(
    *,
    raw_id: str | None,
    url: str | None,
    title: str,
    body_html: str,
    html_base: str,
    authors: tuple[str, ...],
    published_at: datetime | None,
    language: str | None,
    external_id: str | None,
    category: str | None = None,
) -> ParsedEntry:
    summary_html = _safe_html(body_html, html_base) if body_html else ""
    summary = _clip(html_to_text(summary_html), MAX_SUMMARY)
    key_id = raw_id.strip() if raw_id else ""
    basis = (
        key_id or url or f"{title}\x00{published_at.isoformat() if published_at else ''}\x00{summary[:200]}"
    )
    return ParsedEntry(
        entry_key=hashlib.sha256(basis.encode()).hexdigest()[:40],
        url=url,
        title=title or _clip(summary, 81) or "(untitled)",
        summary=summary,
        summary_html=summary_html,
        authors=authors,
        published_at=published_at,
        language=language,
        external_id=external_id,
        category=category,
    )


def _safe_html(markup: str, base: str) -> str:
    """``markup`` reduced to the safe subset, links absolute, about MAX_SUMMARY_HTML long."""
    cleaner = nh3.Cleaner(
        tags=_SAFE_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes={"a": {"href"}, "*": set()},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        url_relative=("rewrite_with_base", base),
    )
    # Spaces go in before tags like <div> and <h1> are dropped, so their words stay apart.
    cleaned = cleaner.clean(_DROPPED_BLOCK_TAG.sub(" <", markup[:_MAX_HTML_INPUT]))
    if len(cleaned) > MAX_SUMMARY_HTML:
        # Cleaning the cut-off text again closes the tags the cut left open.
        cleaned = cleaner.clean(cleaned[:MAX_SUMMARY_HTML])
    return cleaned.strip()


def _plain(value: str, *, markup: bool | None = None) -> str:
    """Plain text of a title; ``markup=None`` guesses from "<" and "&"."""
    is_html = ("<" in value or "&" in value) if markup is None else markup
    return _clip(html_to_text(value) if is_html else _SPACE.sub(" ", value).strip(), MAX_TITLE)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _names(people: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    names = (_NAME_NOISE.sub("", _SPACE.sub(" ", str(person.get("name") or "")).strip()) for person in people)
    return tuple(dict.fromkeys(name for name in names if name))


def _language(value: object) -> str | None:
    """``en-US`` and ``en_us`` become ``en-us``; anything that is no language tag becomes None."""
    if not isinstance(value, str):
        return None
    tag = value.strip().replace("_", "-").lower()
    return tag if _LANGUAGE.fullmatch(tag) else None


def _strip_tracking(query: str) -> str:
    return "&".join(p for p in query.split("&") if p and not _is_tracking(p.partition("=")[0].lower()))


def _is_tracking(name: str) -> bool:
    return name.startswith("utm_") or name in _TRACKING_NAMES


def _unique(entries: Iterable[ParsedEntry]) -> list[ParsedEntry]:
    """Feeds repeat entries; the first copy wins."""
    seen: dict[str, ParsedEntry] = {}
    for entry in entries:
        seen.setdefault(entry.entry_key, entry)
    return list(seen.values())


# --- feed autodiscovery (https://www.rssboard.org/rss-autodiscovery) -------------------------------


class _EndOfHead(Exception):
    """Raised inside the parser at </head> or <body>: feed links live in the head."""


class _FeedLinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "body":
            raise _EndOfHead
        if tag == "base" and self.base is None and attributes.get("href"):
            self.base = attributes["href"]
        elif tag == "link" and self._is_feed_link(attributes):
            self.hrefs.append(attributes["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            raise _EndOfHead

    @staticmethod
    def _is_feed_link(attributes: Mapping[str, str]) -> bool:
        rel = attributes.get("rel", "").lower().split()
        kind = attributes.get("type", "").partition(";")[0].strip().lower()
        return "alternate" in rel and kind in _FEED_TYPES and bool(attributes.get("href", "").strip())


__all__ = ["canonical_url", "discover_feed_links", "html_to_text", "parse_feed", "story_key"]
