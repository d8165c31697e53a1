"""A skill's page as a feed reader and a link preview see it (issue 17): ``<link rel="alternate">`` to its
Atom and JSON Feed that answer 200, visible links to them, Open Graph and Twitter card tags with its figures
in words and an absolute ``og:url`` from ``DIGEST_BASE_URL``, and the search in the header.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from html.parser import HTMLParser

import feedparser
import httpx
import pytest

from digest.db import transaction
from digest.runtime import Runtime
from digest.site.figures import arithmetic, daily
from digest.web import create_app
from tests.figure_data import Posted, corpus, expect, skill_ids
from tests.web_support import serve

BASE = "https://skills.example.org"


class Head(HTMLParser):
    """The ``<meta>`` and ``<link>`` tags of a page, and its forms' actions."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: list[dict[str, str]] = []
        self.forms: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "meta" and ("property" in values or "name" in values):
            self.meta[values.get("property") or values["name"]] = values.get("content", "")
        elif tag == "link":
            self.links.append(values)
        elif tag == "form":
            self.forms.append(f"{values.get('method', 'get')} {values.get('action', '')}")


@pytest.fixture
def site(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    settings = rt.settings.model_copy(update={"base_url": BASE})
    with serve(create_app(settings, clock=lambda: now)) as http:
        yield http


@pytest.fixture
def posted(rt: Runtime, now: datetime) -> list[Posted]:
    items = corpus(rt, now, count=200)
    with transaction(rt.sessions) as session:
        daily.refresh(session, min(p.at for p in items).date(), now.date(), now=now)
    return items


def test_the_page_links_its_atom_and_json_feed_and_both_answer(
    site: httpx.Client, rt: Runtime, now: datetime, posted: list[Posted]
) -> None:
    page = site.get("/skills/python")
    alternates = [link for link in Head(page.text).links if link.get("rel") == "alternate"]

    assert [(link["type"], link["href"]) for link in alternates] == [
        ("application/atom+xml", "/skills/python/feed.atom"),
        ("application/feed+json", "/skills/python/feed.json"),
    ]
    atom, feed_json = (site.get(link["href"]) for link in alternates)
    assert atom.status_code == feed_json.status_code == 200
    assert atom.headers["content-type"].startswith("application/atom+xml")
    assert feed_json.headers["content-type"].startswith("application/feed+json")
    parsed = feedparser.parse(atom.content)
    assert not parsed.bozo and "Python" in parsed.feed.title and parsed.entries
    assert json.loads(feed_json.content)["version"] == "https://jsonfeed.org/version/1.1"
    # People see them too, not only feed readers.
    assert '<a href="/skills/python/feed.atom" type="application/atom+xml">Atom</a>' in page.text
    assert '<a href="/skills/python/feed.json" type="application/feed+json">JSON Feed</a>' in page.text


def test_open_graph_and_twitter_tags_state_the_figures_in_words_with_an_absolute_url(
    site: httpx.Client, rt: Runtime, now: datetime, posted: list[Posted]
) -> None:
    want = expect(posted, skill_ids(rt)["Python"], now.date())
    change = arithmetic.change_between(want.last, want.prior)

    meta = Head(site.get("/skills/python").text).meta

    described = (
        f"{want.total:,} items mentioned Python in the last 90 days; {want.last:,} in the last 4 weeks, "
        f"{change.words}. Get new Python content by email, hourly, daily or weekly."
    )
    assert meta["og:title"] == "Python: news, blog posts and papers · Skill digests"
    assert meta["og:description"] == meta["description"] == meta["twitter:description"] == described
    assert meta["og:url"] == f"{BASE}/skills/python"
    assert meta["og:type"] == "website" and meta["og:site_name"] == "Skill digests"
    assert meta["twitter:card"] == "summary" and meta["twitter:title"] == meta["og:title"]


def test_before_the_first_refresh_the_description_states_no_count(
    site: httpx.Client, rt: Runtime, now: datetime
) -> None:
    corpus(rt, now, count=20, days=3)

    meta = Head(site.get("/skills/python").text).meta

    assert meta["og:description"].startswith("News articles, blog posts and papers that mention Python.")
    assert not any(char.isdigit() for char in meta["og:description"])


def test_the_url_of_an_alias_redirects_and_the_canonical_page_names_itself(
    site: httpx.Client, posted: list[Posted]
) -> None:
    alias = site.get("/skills/k8s")
    canonical = [
        link for link in Head(site.get("/skills/kubernetes").text).links if link["rel"] == "canonical"
    ]

    assert (alias.status_code, alias.headers["location"]) == (301, "/skills/kubernetes")
    assert [link["href"] for link in canonical] == [f"{BASE}/skills/kubernetes"]


def test_every_public_page_has_the_search_in_its_header(site: httpx.Client, posted: list[Posted]) -> None:
    for path in ("/", "/skills", "/skills/rust", "/search?q=pyth", "/skills/no-such-thing"):
        page = site.get(path)
        header = page.text[page.text.index("<header>") : page.text.index("</header>")]
        assert Head(header).forms == ["get /search"], path
        assert 'name="q"' in header and 'role="search"' in header


def test_a_week_label_is_in_css_pixels_and_the_chart_has_no_viewbox(
    site: httpx.Client, now: datetime, posted: list[Posted]
) -> None:
    page = site.get("/skills/python").text
    svg = page[page.index("<svg") : page.index("</svg>")]

    # A viewBox would scale 12 px text down with the width (issue 17: about 4 px on a phone).
    assert "viewBox" not in svg and 'width="100%"' in svg
    assert svg.count('class="date"') == svg.count('class="value"') == 13
    # Every other week is marked to lose its labels on a narrow screen, the newest week kept.
    groups = svg.split("<g")[1:]
    assert [g.startswith(' class="alt"') for g in groups] == [n % 2 == 1 for n in reversed(range(13))]
    assert (now - timedelta(days=6)).strftime("%b") in groups[-1]
