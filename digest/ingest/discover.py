"""Adding a feed by a page's URL: fetch it, and for a web page follow its RSS/Atom autodiscovery links."""

from __future__ import annotations

from dataclasses import dataclass

from digest.errors import FetchError, InvalidInputError, ParseError
from digest.ingest.crawl import FeedFetcher
from digest.ingest.parse import discover_feed_links, parse_feed


@dataclass(frozen=True, slots=True)
class FoundFeed:
    """A feed URL that was fetched and parsed, and the feed's own title."""

    url: str
    title: str


def find_feed(fetcher: FeedFetcher, url: str) -> FoundFeed:
    """The feed at ``url``; for a web page, the first feed it links to (RSS/Atom autodiscovery).

    Raises ``InvalidInputError`` when neither the URL nor any linked URL is a readable feed.
    """
    result = fetcher.fetch(url, etag=None, last_modified=None)
    try:
        parsed = parse_feed(result.content, url=result.url, content_type=result.content_type)
        return FoundFeed(result.permanent_url or url, parsed.title)
    except ParseError as exc:
        candidates = discover_feed_links(result.content, result.url)
        if not candidates:
            raise InvalidInputError(f"no feed at {url}: {exc}") from None
    for candidate in candidates:
        try:
            linked = fetcher.fetch(candidate, etag=None, last_modified=None)
            parsed = parse_feed(linked.content, url=linked.url, content_type=linked.content_type)
        except (FetchError, ParseError):
            continue
        return FoundFeed(linked.permanent_url or candidate, parsed.title)
    raise InvalidInputError(f"{url} links to {len(candidates)} feed(s), none of which could be read")
