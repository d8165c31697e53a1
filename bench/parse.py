"""Items per second of ``digest.parse.parse_feed`` beside bare ``feedparser.parse(bytes)`` in one run.

The corpus is every XML feed in tests/data/feeds that both parse, plus generated 50-item RSS 2.0 and
Atom feeds with realistic HTML bodies (links, images, a script, entities). Both sides parse the same
documents and are credited with the same item count (feedparser's), so the ratio compares time only.
Prints a table and ends with one JSON line of the figures.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import feedparser

from digest.errors import ParseError
from digest.ingest.parse import parse_feed

FEEDS = Path(__file__).parent.parent / "tests" / "data" / "feeds"
URL = "https://feeds.example.org/feed.xml"
ROUNDS = 3
BODY = (
    "<p>In <a href='/2026/05/{n}?utm_source=rss'>part {n}</a> we looked at <b>parsers</b> &amp; "
    "<em>sanitisers</em>; here is the follow-up&nbsp;&#8212; with code:</p>"
    "<pre><code>x = {n} &lt; y</code></pre>"
    "<ul><li>first point</li><li>second <i>point</i></li></ul><img src='/img/{n}.png' alt='chart'>"
    "<script>track({n})</script><p>Read <a href='https://example.com/more/{n}'>more</a>.</p>" * 3
)


def generated_rss(items: int) -> bytes:
    entries = "".join(
        f"<item><title>Post {n} &amp; more</title><link>https://blog.example/2026/05/{n}?utm_medium=feed</link>"
        f"<guid>https://blog.example/p/{n}</guid><pubDate>Mon, 04 May 2026 10:{n % 60:02d}:00 +0200</pubDate>"
        f"<dc:creator>Author {n % 3}</dc:creator>"
        f"<description><![CDATA[{BODY.format(n=n)}]]></description></item>"
        for n in range(items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>Bench RSS</title><link>https://blog.example/</link><language>en-us</language>"
        f"<ttl>60</ttl>{entries}</channel></rss>"
    ).encode()


def generated_atom(items: int) -> bytes:
    entries = "".join(
        f"<entry><id>tag:blog.example,2026:{n}</id>"
        f"<title type='html'>Post {n} &lt;b&gt;bold&lt;/b&gt;</title>"
        f"<link href='/2026/05/{n}'/><updated>2026-05-04T10:{n % 60:02d}:00Z</updated>"
        f"<author><name>Author {n % 3}</name></author><author><name>Second Author</name></author>"
        f"<content type='html'>{_escape(BODY.format(n=n))}</content></entry>"
        for n in range(items)
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom' xml:lang='en'"
        f" xml:base='https://blog.example/'><title>Bench Atom</title><id>urn:bench</id>"
        f"<updated>2026-05-04T10:00:00Z</updated>{entries}</feed>"
    ).encode()


def _escape(markup: str) -> str:
    return markup.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def corpus() -> list[tuple[bytes, int]]:
    """(document, feedparser's item count) for every document both sides read."""
    documents = [p.read_bytes() for p in sorted(FEEDS.iterdir()) if p.suffix in {".xml", ".rss", ".atom"}]
    documents += [generated_rss(50), generated_atom(50)] * 4
    usable = []
    for document in documents:
        try:
            parse_feed(document, url=URL)
        except ParseError:
            continue  # the hostile fixtures: refused on purpose
        usable.append((document, len(feedparser.parse(document).entries)))
    return usable


def items_per_second(documents: list[tuple[bytes, int]], parse: object) -> float:
    assert callable(parse)
    items = sum(count for _, count in documents)
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for document, _count in documents:
            parse(document)
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    documents = corpus()
    items = sum(count for _, count in documents)
    # Alternate the two sides so drift on a shared machine hits both alike.
    bare, ours = [], []
    for _ in range(3):
        bare.append(items_per_second(documents, feedparser.parse))
        ours.append(items_per_second(documents, lambda d: parse_feed(d, url=URL)))
    bare_rate, ours_rate = statistics.median(bare), statistics.median(ours)
    print(f"corpus: {len(documents)} documents, {items} items, {ROUNDS} rounds × 3")
    print(f"feedparser.parse(bytes), default args: {bare_rate:8.0f} items/s")
    print(f"digest.parse.parse_feed:               {ours_rate:8.0f} items/s")
    print(f"ratio parse_feed / bare:               {ours_rate / bare_rate:8.2f}")
    print(
        json.dumps(
            {
                "bare_items_per_s": round(bare_rate),
                "parse_feed_items_per_s": round(ours_rate),
                "ratio": round(ours_rate / bare_rate, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
