"""What a hostile feed cannot do (issue 14, finding 12): reach a site-local address, turn a list into a
URL, or hide bidi overrides and zero-width characters in what pages and emails show."""

from __future__ import annotations

import json

import pytest

from digest.ingest.fetch import is_public_address
from digest.ingest.parse import parse_feed
from tests.support import rss

URL = "https://feeds.example.org/feed.json"


@pytest.mark.parametrize("ip", ["fec0::1", "fed0::42", "feff:ffff::1", "::ffff:10.0.0.1", "fc00::1"])
def test_site_local_and_private_ipv6_addresses_are_not_public(ip: str) -> None:
    assert is_public_address(ip) is False


def test_a_public_ipv6_address_still_is() -> None:
    assert is_public_address("2606:4700:4700::1111") is True


def json_feed(**item: object) -> bytes:
    document = {"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [{"id": "1", **item}]}
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "url", [["https://evil.example/a", "https://evil.example/b"], {"href": "https://evil.example/"}, 42]
)
def test_a_json_feed_url_that_is_not_a_string_is_no_url(url: object) -> None:
    [entry] = parse_feed(json_feed(url=url, title="A title"), url=URL).entries

    assert entry.url is None
    assert "[" not in (entry.url or "") and entry.title == "A title"


def test_a_json_feed_title_or_summary_that_is_not_a_string_is_empty() -> None:
    [entry] = parse_feed(
        json_feed(title=["x"], summary={"a": 1}, url="https://ok.example/p"), url=URL
    ).entries

    assert entry.url == "https://ok.example/p" and "[" not in entry.title and "{" not in entry.summary


HIDDEN = "\u202e\u2066\u200b\u200d\u2060\ufeff\x1b"


@pytest.mark.parametrize(
    "content",
    [
        json_feed(
            title=f"Invoice{HIDDEN}\u202egnp.exe",
            content_text=f"Read{HIDDEN} me",
            authors=[{"name": f"Eve{HIDDEN}"}],
        ),
        rss(("/p", f"Invoice{HIDDEN}\u202egnp.exe", f"Read{HIDDEN} me")),
    ],
    ids=["json-feed", "rss"],
)
def test_bidi_overrides_and_zero_width_characters_are_dropped_from_titles_and_text(content: bytes) -> None:
    [entry] = parse_feed(content, url=URL).entries

    shown = [entry.title, entry.summary, entry.summary_html, *entry.authors]
    assert entry.title == "Invoicegnp.exe" and entry.summary == "Read me"
    assert not [text for text in shown if any(char in text for char in HIDDEN)]


def test_letters_of_other_scripts_are_kept() -> None:
    title = "Привет, 世界 — مرحبا 👩🏽 naïve"

    [entry] = parse_feed(json_feed(title=title), url=URL).entries

    assert entry.title == title
