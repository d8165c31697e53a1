"""Tests for feed bytes -> ``ParsedFeed`` (digest/parse.py), on real feeds from tests/data/feeds/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.errors import ParseError
from digest.parse import html_to_text, parse_feed, story_key
from digest.records import ParsedFeed

FEEDS = Path(__file__).parent / "data" / "feeds"
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

GOOD = [RSS2, ATOM, RDF, JSON_FEED, KOI8R, WINDOWS_1251, BOM, RELATIVE, XML_BASE, NO_IDS, REPEATS, ARXIV]


def read(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def parse(name: str, url: str = URL) -> ParsedFeed:
    return parse_feed(read(name), url=url)


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
    feed = parse(REPEATS)
    urls = [entry.url for entry in feed.entries]

    assert read(REPEATS).count(b"<item>") == 50
    assert len(feed.entries) == 48
    assert len(set(urls)) == 48


def test_the_first_copy_of_a_repeated_entry_wins() -> None:
    feed = parse(REPEATS)
    (entry,) = [e for e in feed.entries if e.url == "http://scripting.com/2017/06/24.html#a100632"]

    assert entry.published_at == datetime(2017, 6, 24, 14, 26, 32, tzinfo=UTC)


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
