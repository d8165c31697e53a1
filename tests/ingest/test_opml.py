"""Tests for OPML import and export (digest/opml.py, issue 3). Pure: bytes in, records out."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from digest.errors import InvalidInputError
from digest.ingest import opml
from digest.ingest.opml import OpmlFeed, parse_opml, write_opml

DATA = Path(__file__).parent.parent / "data" / "opml"
REAL_LISTS = ["Subs.opml", "SubsNoTitleAttributes.opml"]
CREATED = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)

# Counted with grep/awk over the fixtures (see tests/data/opml/README.md), not with the code under test.
REAL_FEEDS = 207
REAL_FEEDS_WITHOUT_SITE = 35


def doc(outlines: str, *, version: str = "2.0") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="{version}"><head><title>t</title></head>'
        f"<body>{outlines}</body></opml>"
    ).encode()


def feed(
    url: str = "https://example.org/feed",
    name: str = "Example",
    *,
    kind: str | None = None,
    interval_seconds: int | None = None,
    site_url: str | None = None,
) -> OpmlFeed:
    return OpmlFeed(url=url, name=name, kind=kind, interval_seconds=interval_seconds, site_url=site_url)


# Real subscription lists


@pytest.mark.parametrize("name", REAL_LISTS)
def test_it_reads_every_feed_of_a_real_subscription_list(name: str) -> None:
    content = (DATA / name).read_bytes()
    expected_urls = [html.unescape(url) for url in re.findall(r'xmlUrl="([^"]*)"', content.decode())]

    result = parse_opml(content)

    assert len(result.feeds) == REAL_FEEDS
    assert [f.url for f in result.feeds] == expected_urls
    assert result.skipped == ()
    assert result.warnings == ()


@pytest.mark.parametrize("name", REAL_LISTS)
def test_it_reads_names_urls_and_site_links_of_a_real_list(name: str) -> None:
    feeds = parse_opml((DATA / name).read_bytes()).feeds

    assert feeds[0] == feed(
        "http://daringfireball.net/feeds/main", "Daring Fireball", site_url="http://daringfireball.net/"
    )
    assert feeds[2] == feed("http://jvns.ca/atom.xml", "Julia Evans")
    assert feeds[4].name == "chat & code"
    assert feeds[-1] == feed("http://www.gerrold.com/feed/", "Gerrold", site_url="http://www.gerrold.com")
    assert sum(f.site_url is None for f in feeds) == REAL_FEEDS_WITHOUT_SITE
    assert all(f.kind is None and f.interval_seconds is None for f in feeds)


@pytest.mark.parametrize("name", REAL_LISTS)
def test_it_takes_feeds_from_inside_nested_folders(name: str) -> None:
    names = {f.name for f in parse_opml((DATA / name).read_bytes()).feeds}

    # One feed from each of the four folders; the folders themselves are not feeds.
    assert {"NSHipster", "Macalope", "NSBlog", "Whatever"} <= names
    assert not {"Programming", "Macintosh", "Weblogs", "Writers"} & names


def test_it_reads_the_same_feeds_from_text_only_and_text_and_title_lists() -> None:
    with_titles, text_only = (parse_opml((DATA / name).read_bytes()).feeds for name in REAL_LISTS)

    assert with_titles == text_only


def test_a_real_list_survives_a_round_trip() -> None:
    feeds = parse_opml((DATA / "Subs.opml").read_bytes()).feeds

    assert parse_opml(write_opml(feeds, title="Subs", created=CREATED)).feeds == feeds


# Parsing


def test_it_walks_folders_nested_several_levels_deep() -> None:
    content = doc(
        '<outline text="A"><outline text="B"><outline text="C">'
        '<outline text="deep" xmlUrl="https://deep.example/feed"/>'
        '</outline></outline></outline><outline text="top" xmlUrl="https://top.example/feed"/>'
    )

    result = parse_opml(content)

    assert [f.name for f in result.feeds] == ["deep", "top"]
    assert result.skipped == ()


def test_it_reads_opml_1_0() -> None:
    result = parse_opml(doc('<outline title="Old" xmlUrl="http://old.example/rss"/>', version="1.0"))

    assert result.feeds == (feed("http://old.example/rss", "Old"),)


def test_it_names_a_feed_by_text_then_title_then_host() -> None:
    content = doc(
        '<outline text="By text" title="By title" xmlUrl="https://a.example/f"/>'
        '<outline text=" " title="By title" xmlUrl="https://b.example/f"/>'
        '<outline xmlUrl="https://C.Example:8443/f"/>'
    )

    assert [f.name for f in parse_opml(content).feeds] == ["By text", "By title", "c.example"]


def test_it_reads_our_kind_and_interval_attributes() -> None:
    content = doc(
        '<outline text="P" xmlUrl="https://arxiv.example/rss" htmlUrl="https://arxiv.example/"'
        ' digestKind="Paper" digestEvery="21600"/>'
    )

    assert parse_opml(content).feeds == (
        feed(
            "https://arxiv.example/rss",
            "P",
            kind="paper",
            interval_seconds=21600,
            site_url="https://arxiv.example/",
        ),
    )


def test_it_reads_attribute_names_in_any_case() -> None:
    content = doc('<outline TEXT="Shouty" XMLURL="https://a.example/f" htmlurl="https://a.example/"/>')

    assert parse_opml(content).feeds == (
        feed("https://a.example/f", "Shouty", site_url="https://a.example/"),
    )


def test_it_keeps_a_feed_with_an_unknown_kind_and_warns() -> None:
    result = parse_opml(doc('<outline text="Pod" xmlUrl="https://a.example/f" digestKind="podcast"/>'))

    assert result.feeds == (feed("https://a.example/f", "Pod"),)
    assert len(result.warnings) == 1
    assert "'Pod'" in result.warnings[0] and "podcast" in result.warnings[0]
    assert result.skipped == ()


@pytest.mark.parametrize("every", ["0", "-60", "1h", "1.5", "²", "9" * 5000])
def test_it_keeps_a_feed_with_an_unusable_interval_and_warns(every: str) -> None:
    result = parse_opml(doc(f'<outline text="F" xmlUrl="https://a.example/f" digestEvery="{every}"/>'))

    assert result.feeds == (feed("https://a.example/f", "F"),)
    assert len(result.warnings) == 1 and "digestEvery" in result.warnings[0]


@pytest.mark.parametrize("site", ["javascript:alert(1)", "file:///etc/passwd", "/relative"])
def test_it_drops_a_site_link_that_is_not_http_and_warns(site: str) -> None:
    result = parse_opml(doc(f'<outline text="F" xmlUrl="https://a.example/f" htmlUrl="{site}"/>'))

    assert result.feeds == (feed("https://a.example/f", "F"),)
    assert len(result.warnings) == 1 and "htmlUrl" in result.warnings[0]


def test_it_skips_outlines_that_are_not_usable_feeds_with_a_reason_each() -> None:
    content = doc(
        '<outline text="Just a note"/>'
        '<outline text="Local" xmlUrl="file:///etc/passwd"/>'
        '<outline text="Script" xmlUrl="javascript:alert(1)"/>'
        '<outline text="Relative" xmlUrl="/feed.xml"/>'
        '<outline text="First" xmlUrl="https://a.example/f"/>'
        '<outline text="Again" xmlUrl=" https://a.example/f "/>'
        '<outline type="include" url="https://elsewhere.example/list.opml"/>'
    )

    result = parse_opml(content)

    assert result.feeds == (feed("https://a.example/f", "First"),)
    assert len(result.skipped) == 6
    note, local, script, relative, again, include = result.skipped
    assert note.startswith("'Just a note'") and "no xmlUrl" in note
    assert local.startswith("'Local'") and "file:///etc/passwd" in local
    assert script.startswith("'Script'") and "only http:// and https://" in script
    assert relative.startswith("'Relative'")
    assert again.startswith("'Again'") and "duplicate" in again and "'First'" in again
    assert "no xmlUrl" in include  # an OPML include is never fetched: parsing is offline
    assert all("\n" not in reason for reason in result.skipped)


def test_it_does_not_report_a_folder_as_skipped() -> None:
    result = parse_opml(
        doc('<outline text="Folder"><outline text="F" xmlUrl="https://a.example/f"/></outline>')
    )

    assert len(result.feeds) == 1
    assert result.skipped == ()


def test_it_accepts_a_utf8_byte_order_mark() -> None:
    content = (DATA / "Subs.opml").read_bytes()

    assert parse_opml(b"\xef\xbb\xbf" + content) == parse_opml(content)


def test_it_accepts_an_empty_body() -> None:
    assert parse_opml(doc("")) == opml.OpmlResult(feeds=(), skipped=(), warnings=())


# Refusals


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"", "no element found"),
        (b"<opml><body><outline text='x'></body></opml>", "mismatched tag"),
        (b"\x89PNG\r\n\x1a\n", "not well-formed"),
        (b'<rss version="2.0"><channel/></rss>', "<rss>"),
        (b'<opml version="2.0"><head/></opml>', "no <body>"),
    ],
)
def test_it_refuses_a_document_that_is_not_opml_in_one_line(content: bytes, detail: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_opml(content)

    message = str(caught.value)
    assert message.startswith("not an OPML file: ") and detail in message
    assert "\n" not in message


def test_it_refuses_an_entity_bomb_without_expanding_it() -> None:
    # The classic "billion laughs": ten levels of ten references each, 10**10 bytes if expanded.
    levels = "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a0 "lol">{levels}]>'
        '<opml version="2.0"><body><outline text="&a9;" xmlUrl="https://a.example/f"/></body></opml>'
    ).encode()

    with pytest.raises(InvalidInputError, match=r"^not an OPML file: it declares the entity 'a0'"):
        parse_opml(bomb)


def test_it_refuses_an_external_entity_without_reading_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    content = (
        f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY s SYSTEM "{secret.as_uri()}">]>'
        '<opml version="2.0"><body><outline text="&s;" xmlUrl="https://a.example/f"/></body></opml>'
    ).encode()

    with pytest.raises(InvalidInputError, match=r"^not an OPML file: it declares the entity 's'") as caught:
        parse_opml(content)

    assert "TOP-SECRET-VALUE" not in str(caught.value)


def test_it_refuses_an_external_parameter_entity(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY s "TOP-SECRET-VALUE">')
    content = (
        f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY % p SYSTEM "{dtd.as_uri()}"> %p;]>'
        '<opml version="2.0"><body><outline text="&s;" xmlUrl="https://a.example/f"/></body></opml>'
    ).encode()

    with pytest.raises(InvalidInputError, match=r"^not an OPML file: it declares the entity 'p'"):
        parse_opml(content)


def test_it_never_loads_an_external_dtd(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY s "TOP-SECRET-VALUE">')
    content = (
        f'<?xml version="1.0"?><!DOCTYPE opml SYSTEM "{dtd.as_uri()}">'
        '<opml version="2.0"><body><outline text="&s;" xmlUrl="https://a.example/f"/></body></opml>'
    ).encode()

    result = parse_opml(content)

    # The DTD is not read, so its entity is empty and the name falls back to the host.
    assert result.feeds == (feed("https://a.example/f", "a.example"),)


def test_it_refuses_a_file_too_big_to_be_a_subscription_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opml, "MAX_OPML_BYTES", 100)

    with pytest.raises(InvalidInputError, match=r"^not an OPML file: .* more than a subscription list"):
        parse_opml(doc('<outline text="F" xmlUrl="https://a.example/f"/>' * 3))


# Writing


def test_it_writes_opml_2_with_a_title_and_an_rfc_822_creation_date() -> None:
    written = write_opml([feed()], title="Digest feeds", created=CREATED)

    assert written.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    assert b"<title>Digest feeds</title>" in written
    assert b"<dateCreated>Mon, 04 May 2026 12:00:00 GMT</dateCreated>" in written
    assert (
        b'<outline type="rss" text="Example" title="Example" xmlUrl="https://example.org/feed" />' in written
    )


def test_it_writes_the_creation_date_in_gmt_whatever_the_zone_given() -> None:
    paris = datetime(2026, 5, 4, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    assert write_opml([], title="t", created=paris) == write_opml([], title="t", created=CREATED)


def test_it_refuses_a_naive_creation_date() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        write_opml([], title="t", created=datetime(2026, 5, 4, 12, 0))  # noqa: DTZ001 (naive on purpose)


def test_it_writes_the_same_bytes_for_the_same_feeds() -> None:
    feeds = [feed(kind="news", interval_seconds=900), feed("https://b.example/f", "B")]

    assert write_opml(feeds, title="t", created=CREATED) == write_opml(
        iter(feeds), title="t", created=CREATED
    )


def test_feeds_survive_a_round_trip_with_every_setting() -> None:
    feeds = (
        feed(
            "https://news.example/rss",
            "News",
            kind="news",
            interval_seconds=900,
            site_url="https://news.example/",
        ),
        feed("https://blog.example/atom", "Blog", kind="blog"),
        feed("http://papers.example/rss?cat=cs.LG&sort=new", "Papers", kind="paper", interval_seconds=21600),
        feed("https://plain.example/feed", "Plain"),
    )

    result = parse_opml(write_opml(feeds, title="t", created=CREATED))

    assert result.feeds == feeds
    assert result.skipped == () and result.warnings == ()


@pytest.mark.parametrize(
    "name",
    [
        "Tom & Jerry <weekly> \"quoted\" 'single'",
        "Ünïcödé — 日本語 🦀",
        "tab\there and new\nline",
        "&amp; literally",
    ],
)
def test_names_with_markup_characters_survive_a_round_trip(name: str) -> None:
    feeds = [feed("https://a.example/f?x=1&y=<2>", name, site_url='https://a.example/"q"')]

    written = write_opml(feeds, title=name, created=CREATED)

    assert parse_opml(written).feeds == tuple(feeds)
    assert f"<title>{html.escape(name, quote=False)}</title>".encode() in written


def test_it_escapes_markup_in_attributes() -> None:
    written = write_opml([feed("https://a.example/f?x=1&y=2", 'A & <B> "C"')], title="t", created=CREATED)

    assert b'text="A &amp; &lt;B&gt; &quot;C&quot;"' in written
    assert b'xmlUrl="https://a.example/f?x=1&amp;y=2"' in written


def test_it_drops_characters_xml_cannot_hold_rather_than_write_an_unreadable_file() -> None:
    written = write_opml([feed(name="Bell\x07 and \x00null\ufffe")], title="t\x1b", created=CREATED)

    assert parse_opml(written).feeds == (feed(name="Bell and null"),)
