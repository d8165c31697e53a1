"""The only package that imports feedparser: feed bytes -> ``ParsedFeed``. Pure.

RSS 0.9x/1.0/2.0 and Atom go through feedparser (which also sniffs encodings); JSON Feed 1.x, which
feedparser does not read, is parsed here. Both adapters feed one entry builder, so every entry gets the
same canonical URL, safe HTML (nh3), plain text and stable key. Always pass bytes: a ``str`` starting
with ``http`` makes feedparser fetch it (FIELD-NOTES).

feedparser's own sanitiser and relative-URI resolver are switched off: they are about half of its cost
on RSS and nh3 does both jobs (issue 3).

    parse_feed -> JSON? jsonfeed.parse_json_feed : xml.parse_xml_feed (entity refusal, feedparser)
        -> entries.build_entry per entry (urls.canonical_url, html.safe_html, html.html_to_text)
    discover.discover_feed_links: an HTML page's <link rel="alternate"> feeds
    urls.story_key: the key shared by copies of one story in several feeds (used by store)
"""

from __future__ import annotations

from digest.errors import ParseError
from digest.ingest.parse.discover import discover_feed_links
from digest.ingest.parse.html import html_to_text
from digest.ingest.parse.jsonfeed import looks_like_json, parse_json_feed
from digest.ingest.parse.urls import canonical_url, story_key
from digest.ingest.parse.xml import parse_xml_feed
from digest.records import ParsedFeed


def parse_feed(content: bytes, *, url: str, content_type: str = "") -> ParsedFeed:
    """Parse a feed document fetched from ``url``. Raises ``ParseError`` when it holds no feed we read."""
    if not content.strip():
        raise ParseError("the server sent an empty body")
    if looks_like_json(content, content_type):
        return parse_json_feed(content, url)
    return parse_xml_feed(content, url, content_type)


__all__ = ["canonical_url", "discover_feed_links", "html_to_text", "parse_feed", "story_key"]
