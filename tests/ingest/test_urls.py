"""Canonical links and story keys (digest/ingest/parse/urls.py): one story whatever the tracking noise."""

from __future__ import annotations

import pytest

from digest.ingest.parse.urls import canonical_url, story_key

BASE = "https://feed.example.com/"


def test_tracking_parameters_are_dropped_and_the_rest_kept_in_order() -> None:
    url = "https://Example.com/a?utm_source=x&id=3&fbclid=y&ref=hn&ref_src=twsrc&source=rss------pytorch-5&page=2"

    assert canonical_url(url, BASE) == "https://example.com/a?id=3&page=2"
    assert (
        canonical_url("https://example.com/a?source=newsletter", BASE)
        == "https://example.com/a?source=newsletter"
    )


@pytest.mark.parametrize(
    "copy",
    [
        "http://www.example.com/news/story/",
        "https://EXAMPLE.com/news/story?utm_medium=rss",
        "https://example.com/news/story/amp/",
        "https://example.com/amp/news/story",
        "https://amp.example.com/news/story?amp=1",
        "https://example.com/news/story?outputType=amp",
    ],
)
def test_scheme_host_case_trailing_slash_and_amp_copies_share_the_story_key(copy: str) -> None:
    assert story_key(canonical_url(copy, BASE), "") == story_key("https://example.com/news/story", "")


@pytest.mark.parametrize(
    "other",
    ["https://example.com/news/story-2", "https://example.com/news/ampere", "https://example.org/news/story"],
)
def test_different_pages_keep_different_story_keys(other: str) -> None:
    assert story_key(other, "") != story_key("https://example.com/news/story", "")


def test_an_amp_html_copy_is_the_html_page() -> None:
    assert story_key("https://example.com/a/b.amp.html", "") == story_key("https://example.com/a/b.html", "")
