"""Feed autodiscovery (https://www.rssboard.org/rss-autodiscovery): the feeds an HTML page advertises."""

from __future__ import annotations

from collections.abc import Mapping
from html.parser import HTMLParser
from urllib.parse import urljoin

from digest.ingest.parse.urls import canonical_url

_DISCOVERY_BYTES = 512 * 1024
_FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/feed+json", "application/json"}
)


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
