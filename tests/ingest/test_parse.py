"""Tests for feed bytes -> ``ParsedFeed`` (digest/parse.py), on real feeds from tests/data/feeds/."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.errors import ParseError
from digest.ingest.parse import canonical_url, discover_feed_links, html_to_text, parse_feed, story_key
from digest.records import ParsedEntry, ParsedFeed

FEEDS = Path(__file__).parent.parent / "data" / "feeds"
URL = "https://feeds.example.org/feed.xml"

RSS2 = "rss_2.0_relurl_1.xml"
ATOM = "google_alerts_atom.xml"
RDF = "rss_1.0_biorxiv.xml"
JSON_FEED = "jsonfeed_example_1.json"
KOI8R = "koi8r.xml"
WINDOWS_1251 = "encoding_WINDOWS-1251.xml"
BOM = "donthitsave.xml"
RELATIVE = "atom_relative.xml"
XML_BASE = "atom_xml_base.xml"
NO_IDS = "rss_0.92_spec_1.xml"
REPEATS = "scriptingNews.rss"
ARXIV = "q_testing_s0_m10_bc5a6c384fe9.atom.xml"
TRUNCATED = "rss_2.0_invalid_1.xml"
PARTIAL_JSON = "allthis-partial.json"
NOT_JSON_FEED = "ScriptingNews.json"
XHTML_DTD = "DuplicateContentAtomFeed.xml"
NETSCAPE_DTD = "rss_0.91_netscape_doctype.xml"
ENTITY_BOMB = "entity_bomb.xml"
EXTERNAL_ENTITY = "external_entity.xml"
TTL_AND_LANG = "rubenerd.rss"
JSON_FEED_11 = "jsonfeed_elastic_1.1.json"
DC_CREATOR = "rss_1.0_spec_2.xml"
ARXIV_OLD_ID = "id_astro-ph_0601001_s0_m100_3150dca9dc76.atom.xml"

GOOD = [RSS2, ATOM, RDF, JSON_FEED, KOI8R, WINDOWS_1251, BOM, RELATIVE, XML_BASE, NO_IDS, REPEATS, ARXIV]
GOOD += [XHTML_DTD, NETSCAPE_DTD, TTL_AND_LANG, JSON_FEED_11, DC_CREATOR, ARXIV_OLD_ID]


def read(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def parse(name: str, url: str = URL) -> ParsedFeed:
    return parse_feed(read(name), url=url)


def rss(item: str, channel: str = "") -> bytes:
    """A one-item RSS 2.0 document around ``item`` (the inside of <item>)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/">'
        f"<channel><title>T</title><link>https://site.example/</link>{channel}<item>{item}</item></channel></rss>"
    ).encode()


def atom(entry: str, lang: str = "") -> bytes:
    """A one-entry Atom 1.0 document around ``entry`` (the inside of <entry>)."""
    xml_lang = f' xml:lang="{lang}"' if lang else ""
    return (
        f'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"{xml_lang}><title>T</title>'
        f"<id>urn:feed</id><updated>2026-01-01T00:00:00Z</updated><entry>{entry}</entry></feed>"
    ).encode()


def peak_bytes_while_parsing(content: bytes) -> tuple[int, Exception | None]:
    tracemalloc.start()
    try:
        parse_feed(content, url=URL)
    except ParseError as exc:
        error: Exception | None = exc
    else:
        error = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, error


@pytest.mark.parametrize(
    ("name", "title", "count"),
    [
        (RSS2, "Insanity Industries", 2),
        (ATOM, "Google Alert - Slack", 20),
        (RDF, "bioRxiv Subject Collection: Genomics", 1),
        (JSON_FEED, "Daring Fireball", 2),
        (KOI8R, "Пример RSS ленты", 2),
        (WINDOWS_1251, "iBash.Org.Ru", 50),
        (BOM, "Don't Hit Save", 10),
        (RELATIVE, "Example Feed with Relative URLs", 1),
        (XML_BASE, "my cool website title", 1),
        (NO_IDS, "Dave Winer: Grateful Dead", 3),
        (ARXIV, "arXiv Query: search_query=all:testing&id_list=&start=0&max_results=10", 10),
    ],
)
def test_it_reads_the_title_and_every_entry_of_a_real_feed(name: str, title: str, count: int) -> None:
    feed = parse(name)

    assert feed.title == title
    assert len(feed.entries) == count
    assert feed.warning is None


def test_it_makes_html_titles_plain_text_with_entities_decoded() -> None:
    titles = [entry.title for entry in parse(ATOM).entries]

    assert titles[1] == "Slack Stock Has a Compelling Story and the Numbers to Back It Up"
    assert all("<" not in title and "&lt;" not in title and "&amp;" not in title for title in titles)


def test_it_makes_summaries_plain_text_with_entities_decoded() -> None:
    summary = parse(ATOM).entries[1].summary

    assert summary.startswith("In the run up to the IPO for Slack Technologies Inc (NYSE:WORK)")
    assert "Company's decision" in summary
    assert "<b>" not in summary and "&#39;" not in summary and "&nbsp;" not in summary


def test_it_resolves_relative_entry_links_against_the_feed_url() -> None:
    feed = parse(RELATIVE, url="https://example.com/blog/feed.xml")

    assert feed.entries[0].url == "https://example.com/blog/2003/12/13/atom03"


@pytest.mark.parametrize("name", GOOD)
def test_every_entry_link_is_absolute(name: str) -> None:
    urls = [entry.url for entry in parse(name).entries if entry.url]

    assert all(url.startswith(("http://", "https://")) for url in urls)


def test_it_keeps_the_absolute_links_of_an_xml_base_feed() -> None:
    assert [entry.url for entry in parse(RSS2).entries] == [
        "https://insanity.industries/post/pareto-optimal-compression/",
        "https://insanity.industries/post/pacman-tracking-leftover-packages/",
    ]


def test_it_converts_a_dated_entry_to_utc() -> None:
    # <pubDate>Tue, 02 Mar 2021 23:39:15 +0100</pubDate>
    assert parse(RSS2).entries[0].published_at == datetime(2021, 3, 2, 22, 39, 15, tzinfo=UTC)


def test_it_reads_json_feed_dates_as_utc() -> None:
    assert parse(JSON_FEED).entries[0].published_at == datetime(2020, 1, 24, 23, 46, 57, tzinfo=UTC)


@pytest.mark.parametrize("name", GOOD)
def test_every_date_is_timezone_aware_utc(name: str) -> None:
    dates = [entry.published_at for entry in parse(name).entries if entry.published_at]

    assert all(date.utcoffset() == timedelta(0) for date in dates)


def test_it_leaves_an_undated_entry_undated() -> None:
    assert [entry.published_at for entry in parse(NO_IDS).entries] == [None, None, None]


def test_it_decodes_a_koi8_r_feed_to_cyrillic() -> None:
    feed = parse(KOI8R)

    assert [entry.title for entry in feed.entries] == ["Первая новость", "Вторая новость"]
    assert "Ёжик, чай, Москва, Санкт-Петербург" in feed.entries[0].summary
    assert feed.entries[1].summary.startswith("Проверка специальных символов: & < >")


def test_it_decodes_a_windows_1251_feed_to_cyrillic() -> None:
    entry = parse(WINDOWS_1251).entries[0]

    assert entry.title == "Цитата #17703"
    assert entry.summary.startswith("xxx: есть у кого жаба программер")


def test_it_reads_a_feed_that_starts_with_a_byte_order_mark() -> None:
    content = read(BOM)
    feed = parse(BOM)

    assert content.startswith(b"\xef\xbb\xbf")
    assert feed.entries[0].title == "Skipping Around"
    assert not feed.title.startswith("\ufeff")


def test_it_reads_the_arxiv_api_as_a_feed_of_abstract_pages() -> None:
    entry = parse(ARXIV).entries[0]

    assert (
        entry.title
        == "Testing Deep Learning Models: A First Comparative Study of Multiple Testing Techniques"
    )
    assert entry.url == "https://arxiv.org/abs/2202.12139v1"
    assert entry.published_at == datetime(2022, 2, 24, 15, 5, 19, tzinfo=UTC)


def test_it_gives_entries_without_ids_or_links_distinct_keys() -> None:
    keys = [entry.entry_key for entry in parse(NO_IDS).entries]

    assert len(set(keys)) == 3


@pytest.mark.parametrize("name", GOOD)
def test_the_same_bytes_parse_to_the_same_keys_twice(name: str) -> None:
    first = [entry.entry_key for entry in parse(name).entries]
    second = [entry.entry_key for entry in parse(name).entries]

    assert first == second
    assert len(set(first)) == len(first)


def test_it_collapses_entries_repeated_inside_one_feed() -> None:
    # Scripting News tells posts apart by fragment (24.html#a100632); canonical URLs drop fragments
    # (issue 3), so the distinct posts are counted by key, not URL.
    feed = parse(REPEATS)

    assert read(REPEATS).count(b"<item>") == 50
    assert len(feed.entries) == 48
    assert len({entry.entry_key for entry in feed.entries}) == 48
    assert all(entry.url and "#" not in entry.url for entry in feed.entries)


def test_the_first_copy_of_a_repeated_entry_wins() -> None:
    # guid 24.html#a100632 appears twice: first at 14:26:32, then again at 14:52:32.
    feed = parse(REPEATS)
    dates = {e.published_at for e in feed.entries if e.url == "http://scripting.com/2017/06/24.html"}

    assert datetime(2017, 6, 24, 14, 26, 32, tzinfo=UTC) in dates
    assert datetime(2017, 6, 24, 14, 52, 32, tzinfo=UTC) not in dates


def test_it_reads_a_truncated_feed_with_a_warning() -> None:
    feed = parse(TRUNCATED)

    assert feed.title == "Reuters: Most Read Articles"
    assert feed.entries == ()
    assert feed.warning is not None
    assert "no element found" in feed.warning


def test_it_refuses_an_html_page_saying_it_is_html() -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>Home</title></head><body><p>Hello</p></body></html>"

    with pytest.raises(ParseError, match="HTML page"):
        parse_feed(page, url=URL, content_type="text/html; charset=utf-8")


@pytest.mark.parametrize("content", [b"", b"   \r\n\t "])
def test_it_refuses_an_empty_body(content: bytes) -> None:
    with pytest.raises(ParseError, match="empty"):
        parse_feed(content, url=URL)


def test_it_refuses_a_cut_off_json_feed() -> None:
    with pytest.raises(ParseError, match="broken JSON"):
        parse(PARTIAL_JSON)


def test_it_refuses_json_that_is_not_a_json_feed() -> None:
    with pytest.raises(ParseError, match="not a JSON Feed"):
        parse(NOT_JSON_FEED)


def test_it_refuses_a_json_feed_without_items() -> None:
    with pytest.raises(ParseError, match="no items"):
        parse_feed(b'{"version": "https://jsonfeed.org/version/1.1", "title": "t"}', url=URL)


def test_it_refuses_text_that_is_no_feed() -> None:
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(b"just some words, no markup", url=URL)


# --- html_to_text ---------------------------------------------------------------------------------


def test_html_to_text_drops_tags_and_decodes_entities() -> None:
    assert html_to_text("<p>Tom &amp; Jerry&nbsp;&#8212; <b>live</b></p>") == "Tom & Jerry — live"


def test_html_to_text_drops_scripts_and_styles() -> None:
    assert html_to_text("<style>p{}</style><p>a</p><script>alert(1)</script><p>b</p>") == "a b"


def test_html_to_text_keeps_block_boundaries_as_spaces() -> None:
    assert html_to_text("<li>one</li><li>two</li>line<br>break") == "one two line break"


# --- story_key ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/2026/05/story",
        "https://www.example.com/2026/05/story",
        "https://example.com/2026/05/story/",
        "http://example.com/2026/05/story",
        "https://example.com/2026/05/story?utm_source=rss&utm_medium=feed",
        "https://www.example.com/2026/05/story/?utm_campaign=x&fbclid=abc#comments",
    ],
)
def test_story_key_ignores_tracking_noise(url: str) -> None:
    assert story_key(url, "A title") == story_key("https://example.com/2026/05/story", "Another title")


def test_story_key_keeps_query_parameters_that_name_the_story() -> None:
    assert story_key("https://example.com/item?id=1", "") != story_key("https://example.com/item?id=2", "")
    assert story_key("https://example.com/item?id=1&utm_source=x", "") == story_key(
        "https://example.com/item?id=1", ""
    )


def test_story_key_tells_different_stories_apart() -> None:
    assert story_key("https://example.com/a", "T") != story_key("https://example.com/b", "T")
    assert story_key("https://example.com/a", "T") != story_key("https://example.org/a", "T")


def test_story_key_falls_back_to_the_title_ignoring_case_and_spacing() -> None:
    assert story_key(None, "Rust 2.0  Released") == story_key("", "rust 2.0 released")
    assert story_key(None, "Rust 2.0 released") != story_key(None, "Rust 3.0 released")


# --- hostile XML (issue 3) -------------------------------------------------------------------------

MEMORY_LIMIT = 20 * 1024 * 1024


def test_it_refuses_an_entity_expansion_bomb_without_growing_memory() -> None:
    peak, error = peak_bytes_while_parsing(read(ENTITY_BOMB))

    assert isinstance(error, ParseError) and "entities" in str(error)
    assert peak < MEMORY_LIMIT


def test_it_refuses_an_external_entity_without_reading_the_file() -> None:
    peak, error = peak_bytes_while_parsing(read(EXTERNAL_ENTITY))

    assert isinstance(error, ParseError) and "entities" in str(error)
    assert "root:" not in str(error)
    assert peak < MEMORY_LIMIT


@pytest.mark.parametrize("padding", [10_000, 20_000])
def test_it_refuses_entities_declared_after_a_long_comment(padding: int) -> None:
    # 10,000 × 5 bytes fits the 64 KB we look at; 20,000 × 5 does not, and is refused for hiding its DOCTYPE.
    bomb = read(ENTITY_BOMB)
    declaration_end = bomb.index(b"?>") + 2
    padded = bomb[:declaration_end] + b"<!--" + b" <x> " * padding + b"-->" + bomb[declaration_end:]

    with pytest.raises(ParseError, match=r"entities|no XML element"):
        parse_feed(padded, url=URL)


def test_it_refuses_entities_in_a_utf_16_document() -> None:
    bomb = read(ENTITY_BOMB).replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="utf-16"?>')

    with pytest.raises(ParseError, match="entities"):
        parse_feed(bomb.decode().encode("utf-16"), url=URL)


@pytest.mark.parametrize(("name", "count"), [(XHTML_DTD, 10), (NETSCAPE_DTD, 1)])
def test_it_reads_a_feed_whose_doctype_only_names_an_external_dtd(name: str, count: int) -> None:
    assert b"<!DOCTYPE" in read(name)
    assert len(parse(name).entries) == count


def test_it_reads_a_post_that_quotes_an_entity_declaration() -> None:
    content = rss("<title>XXE</title><description><![CDATA[<p>Never <!ENTITY x> again</p>]]></description>")

    assert b"<!ENTITY" in content
    assert [entry.title for entry in parse_feed(content, url=URL).entries] == ["XXE"]


# --- canonical URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/post/1", "https://feeds.example.org/post/1"),
        ("HTTPS://Example.COM:443/A/b", "https://example.com/A/b"),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://example.com/x#comments", "https://example.com/x"),
        (
            "https://example.com/x?id=2&utm_source=rss&a=1&UTM_Medium=feed&fbclid=z",
            "https://example.com/x?id=2&a=1",
        ),
        ("https://example.com/x?gclid=1&mc_cid=2&mc_eid=3&igshid=4&ref_src=5", "https://example.com/x"),
        ("https://example.com/x?b=2&a=1", "https://example.com/x?b=2&a=1"),
        ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
    ],
)
def test_canonical_url_normalises_a_link(url: str, expected: str) -> None:
    assert canonical_url(url, URL) == expected


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "mailto:a@example.com",
        "ftp://example.com/x",
        "",
        "   ",
        "http://example.com:99999/",
    ],
)
def test_canonical_url_refuses_what_is_not_an_http_link(url: str) -> None:
    assert canonical_url(url, URL) is None


def test_entry_links_are_canonical() -> None:
    feed = parse_feed(
        rss("<title>a</title><link>https://Site.example/a?utm_campaign=x&amp;p=1#top</link>"), url=URL
    )

    assert feed.entries[0].url == "https://site.example/a?p=1"


def test_a_javascript_entry_link_becomes_no_link() -> None:
    assert parse_feed(rss("<title>a</title><link>javascript:alert(1)</link>"), url=URL).entries[0].url is None


# --- keys ------------------------------------------------------------------------------------------


def test_an_entry_without_a_guid_is_keyed_by_its_canonical_link() -> None:
    plain = parse_feed(rss("<title>a</title><link>https://site.example/a</link>"), url=URL)
    tracked = parse_feed(rss("<title>b</title><link>https://site.example/a?utm_source=x</link>"), url=URL)

    assert plain.entries[0].entry_key == tracked.entries[0].entry_key
    assert len(plain.entries[0].entry_key) == 40


def test_a_guid_keys_an_entry_whatever_its_link() -> None:
    first = parse_feed(rss("<guid>tag:1</guid><title>a</title><link>https://site.example/a</link>"), url=URL)
    moved = parse_feed(rss("<guid>tag:1</guid><title>a</title><link>https://site.example/b</link>"), url=URL)

    assert first.entries[0].entry_key == moved.entries[0].entry_key


# --- titles ----------------------------------------------------------------------------------------


def test_a_long_title_is_cut_to_500_characters() -> None:
    title = parse_feed(rss(f"<title>{'word ' * 400}</title>"), url=URL).entries[0].title

    assert len(title) <= 500
    assert title.endswith("…")


def test_a_plain_text_atom_title_keeps_its_angle_brackets() -> None:
    entry = parse_feed(
        atom('<id>urn:1</id><title type="text">Use &lt;b&gt; for   bold</title>'), url=URL
    ).entries[0]

    assert entry.title == "Use <b> for bold"


# --- summary_html and summary ----------------------------------------------------------------------

HOSTILE_HTML = (
    '<h1>Head</h1><p onclick="steal()">Read <a href="/more" onmouseover="x()" title="t">more</a>'
    ' or <a href="javascript:alert(1)">this</a>.</p><script>alert("x")</script><style>p{color:red}</style>'
    '<iframe src="https://evil.example/">frame text</iframe><img src="x.png" onerror="boom()">'
    "<table><tr><td>cell</td></tr></table><ul><li>one</li><li>two</li></ul><h2>Sub</h2>"
    '<a href="mailto:me@example.com">mail</a>'
)


def hostile_entry() -> ParsedEntry:
    item = f"<title>h</title><link>https://site.example/posts/1</link><description><![CDATA[{HOSTILE_HTML}]]></description>"
    return parse_feed(rss(item), url=URL).entries[0]


def test_summary_html_keeps_only_the_safe_subset() -> None:
    summary_html = hostile_entry().summary_html

    for banned in (
        "<script",
        "<style",
        "<iframe",
        "<img",
        "<h1",
        "<table",
        "onclick",
        "onmouseover",
        "title=",
        "javascript:",
        "alert",
        "frame text",
        "color:red",
    ):
        assert banned not in summary_html
    assert "<ul><li>one</li><li>two</li></ul>" in summary_html
    assert "<h2>Sub</h2>" in summary_html


def test_summary_html_links_are_absolute_and_carry_rel() -> None:
    summary_html = hostile_entry().summary_html

    assert '<a href="https://site.example/more" rel="noopener noreferrer nofollow">more</a>' in summary_html
    assert '<a href="mailto:me@example.com" rel="noopener noreferrer nofollow">mail</a>' in summary_html


def test_summary_html_links_follow_an_explicit_xml_base() -> None:
    entry = parse_feed(
        atom(
            '<id>urn:1</id><title>t</title><link href="https://site.example/post"/>'
            '<content type="html" xml:base="https://cdn.example/post/">'
            '&lt;a href="img.png"&gt;i&lt;/a&gt;</content>'
        ),
        url=URL,
    ).entries[0]

    assert 'href="https://cdn.example/post/img.png"' in entry.summary_html


def test_summary_is_the_plain_text_of_the_same_html() -> None:
    assert hostile_entry().summary == "Head Read more or this. cell one two Sub mail"


def test_summary_html_and_summary_are_capped() -> None:
    paragraphs = "".join(f"<p>Paragraph {n} <b>bold</b> text.</p>" for n in range(3000))
    entry = parse_feed(
        rss(f"<title>t</title><description><![CDATA[{paragraphs}]]></description>"), url=URL
    ).entries[0]

    assert 19_000 < len(entry.summary_html) <= 20_100
    assert entry.summary_html.endswith("</p>") or entry.summary_html.endswith("</b>")
    assert len(entry.summary) <= 1200


def test_a_plain_text_abstract_is_escaped_into_summary_html() -> None:
    entry = parse_feed(
        atom('<id>urn:1</id><title>t</title><summary type="text">a &lt; b &amp; c</summary>'), url=URL
    )

    assert entry.entries[0].summary_html == "a &lt; b &amp; c"
    assert entry.entries[0].summary == "a < b & c"


# --- authors, dates, languages ---------------------------------------------------------------------


def test_it_keeps_every_author_of_an_arxiv_entry() -> None:
    assert parse(ARXIV_OLD_ID).entries[0].authors == (
        "Andrew Gould",
        "Susan Dorsher",
        "B. Scott Gaudi",
        "Andrzej Udalski",
    )


def test_it_reads_rss_authors_and_dc_creators() -> None:
    item = "<title>a</title><author>jdoe@example.com (John Doe)</author><dc:creator>Ann</dc:creator>"

    assert parse_feed(rss(item), url=URL).entries[0].authors == ("John Doe", "Ann")
    assert parse(DC_CREATOR).entries[0].authors == ("Simon St.Laurent",)


def test_json_feed_items_have_their_own_authors_else_the_feeds() -> None:
    entries = parse(JSON_FEED_11).entries

    assert [entry.authors for entry in entries] == [
        ("Chris Churilo", "Fake Author 1"),
        ("Chris Churilo",),
        ("Fake Author 3", "Fake Author 4"),
    ]


def test_json_feed_rfc_822_dates_are_read_as_utc() -> None:
    assert parse(JSON_FEED_11).entries[0].published_at == datetime(2019, 5, 31, 19, 17, 58, tzinfo=UTC)


def test_an_entry_with_only_an_updated_date_uses_it() -> None:
    feed = parse_feed(
        atom("<id>urn:1</id><title>t</title><updated>2026-02-03T04:05:06+01:00</updated>"), url=URL
    )

    assert feed.entries[0].published_at == datetime(2026, 2, 3, 3, 5, 6, tzinfo=UTC)


def test_entries_take_the_rss_feed_language_lower_cased() -> None:
    feed = parse(TTL_AND_LANG)

    assert feed.language == "en-sg"
    assert {entry.language for entry in feed.entries} == {"en-sg"}


def test_an_atom_entry_language_overrides_the_feeds() -> None:
    entry = '<id>urn:1</id><title xml:lang="de-AT">Hallo</title>'

    assert parse_feed(atom(entry, lang="en"), url=URL).entries[0].language == "de-at"
    assert parse_feed(atom("<id>urn:1</id><title>Hi</title>", lang="en_GB"), url=URL).language == "en-gb"


def test_json_feed_items_have_their_own_language_else_the_feeds() -> None:
    feed = parse(JSON_FEED_11)

    assert feed.language == "en-us"
    assert [entry.language for entry in feed.entries] == ["en-us", "en-au", "en-us"]


def test_a_feed_without_a_language_has_none() -> None:
    assert parse(DC_CREATOR).language is None
    assert (
        parse_feed(rss("<title>a</title>", "<language>not a language!</language>"), url=URL).language is None
    )


# --- papers ----------------------------------------------------------------------------------------


def test_an_arxiv_entry_is_named_by_its_id_without_version() -> None:
    entry = parse(ARXIV).entries[0]

    # This entry also carries an arxiv:doi; the arXiv id still names it.
    assert b"<arxiv:doi" in read(ARXIV)
    assert entry.external_id == "arxiv:2202.12139"
    assert entry.category == "cs.SE"
    assert entry.summary.startswith("Deep Learning (DL) has revolutionized")


def test_an_old_style_arxiv_id_keeps_its_archive() -> None:
    entry = parse(ARXIV_OLD_ID).entries[0]

    assert entry.external_id == "arxiv:astro-ph/0601001"
    assert entry.category == "astro-ph"


def test_a_dc_identifier_doi_names_the_paper() -> None:
    assert parse(RDF).entries[0].external_id == "doi:10.1101/2023.12.16.571984"


@pytest.mark.parametrize(
    "item",
    [
        "<title>p</title><prism:doi>10.1000/ABC.123</prism:doi>",
        "<title>p</title><dc:identifier>doi:10.1000/abc.123</dc:identifier>",
        "<title>p</title><link>https://doi.org/10.1000/ABC.123</link>",
    ],
)
def test_a_doi_is_read_lower_cased_from_prism_dc_or_a_doi_link(item: str) -> None:
    assert parse_feed(rss(item), url=URL).entries[0].external_id == "doi:10.1000/abc.123"


def test_an_entry_without_paper_ids_has_none() -> None:
    entry = parse(RSS2).entries[0]

    assert entry.external_id is None
    assert entry.category is None


# --- feed fields -----------------------------------------------------------------------------------


def test_it_reads_the_rss_ttl_in_minutes() -> None:
    assert parse(TTL_AND_LANG).ttl_minutes == 30


@pytest.mark.parametrize("channel", ["", "<ttl>soon</ttl>", "<ttl>-5</ttl>", f"<ttl>{'9' * 50}</ttl>"])
def test_a_missing_or_invalid_ttl_is_none(channel: str) -> None:
    assert parse_feed(rss("<title>a</title>", channel), url=URL).ttl_minutes is None


def test_the_html_page_error_starts_with_the_agreed_wording() -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(b"<html><head><title>x</title></head><body>hi</body></html>", url=URL)

    assert str(caught.value).startswith("this is an HTML page, not a feed")


# --- feed autodiscovery ----------------------------------------------------------------------------

PAGE_URL = "https://Blog.example/2026/post.html"


def test_it_discovers_feed_links_in_document_order() -> None:
    page = b"""<!doctype html><html><head>
    <link rel="stylesheet" href="/s.css" type="text/css">
    <link rel="alternate" type="application/atom+xml" href="/atom.xml">
    <LINK REL="Alternate Feed" TYPE="Application/RSS+XML; charset=utf-8" HREF="rss.xml?utm_source=x">
    <link rel="alternate" type="application/feed+json" href="https://blog.example/feed.json">
    <link rel="alternate" type="application/json" href="/feed.json">
    <link rel="alternate" type="text/html" href="/fr/">
    <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
    <link rel="alternate" type="application/rss+xml" href="/atom.xml#again">
    </head><body><link rel="alternate" type="application/rss+xml" href="/body.xml"></body></html>"""

    assert discover_feed_links(page, PAGE_URL) == (
        "https://blog.example/atom.xml",
        "https://blog.example/2026/rss.xml",
        "https://blog.example/feed.json",
    )


def test_discovered_links_resolve_against_the_base_element() -> None:
    page = b'<head><link rel="alternate" type="application/rss+xml" href="rss"><base href="https://cdn.example/b/">'

    assert discover_feed_links(page, PAGE_URL) == ("https://cdn.example/b/rss",)


def test_a_page_without_feed_links_discovers_none() -> None:
    assert (
        discover_feed_links(b"<html><head><title>x</title></head><body>no feeds</body></html>", PAGE_URL)
        == ()
    )


def test_an_rss_title_has_its_markup_stripped() -> None:
    item = "<title>Python &lt;script&gt;alert(1)&lt;/script&gt; &amp;amp; tips</title>"

    assert parse_feed(rss(item), url=URL).entries[0].title == "Python & tips"
