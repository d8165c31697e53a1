"""The skill search and the 404 of an unknown skill (issue 17): a name, slug, alias or id goes straight to the
skill's page; anything else lists the closest skills; bad input is a 400 page that says what to type, with
the form, never a 500; ``/skills/<a name as a slug>`` is a 404 that suggests what the command line suggests.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from digest.db import transaction
from digest.ingest import taxonomy
from digest.ingest.skills import SUGGESTIONS, resolve_skill, search_skills, unknown_skill
from digest.runtime import Runtime
from digest.web import create_app
from tests.web_support import serve


@pytest.fixture
def site(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        yield http


def linked(page: str) -> list[tuple[str, str]]:
    """The skill links in the page's main part, in order: (path, name)."""
    main = page[page.index("<main") : page.index("</main>")]
    return [
        (path, html.unescape(name))
        for path, name in re.findall(r'<a href="(/skills/[^"]+)">([^<]+)</a>', main)
    ]


def words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.mark.parametrize(
    ("typed", "slug"),
    [
        ("python", "python"),
        ("  PYTHON ", "python"),
        ("K8S", "kubernetes"),
        ("Large language model", "llm"),
        ("golang", "go"),
        ("11a4a60b518bf249", "python"),
    ],
)
def test_a_name_alias_or_id_goes_straight_to_the_skill_page(
    site: httpx.Client, typed: str, slug: str
) -> None:
    found = site.get("/search", params={"q": typed})

    assert (found.status_code, found.headers["location"]) == (303, f"/skills/{slug}")


def test_a_merged_skill_goes_to_the_skill_it_was_merged_into(
    site: httpx.Client, rt: Runtime, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        taxonomy.merge(session, resolve_skill(session, "Docker"), resolve_skill(session, "Kubernetes"), now)

    assert site.get("/search", params={"q": "docker"}).headers["location"] == "/skills/kubernetes"


def test_a_typo_or_a_part_lists_the_closest_skills_with_their_links(site: httpx.Client, rt: Runtime) -> None:
    typo = site.get("/search", params={"q": "pythn"})
    part = site.get("/search", params={"q": "learn"})
    with transaction(rt.sessions) as session:
        want = [(f"/skills/{hit.slug}", hit.name) for hit in search_skills(session, "learn")]

    assert typo.status_code == part.status_code == 200
    assert linked(typo.text) == [("/skills/python", "Python")]
    assert "No skill is called “pythn”. The closest:" in words(typo.text)
    assert linked(part.text) == want and len(want) >= 2
    assert 'value="learn"' in part.text


def test_a_query_nothing_resembles_says_so_and_keeps_the_form(site: httpx.Client) -> None:
    page = site.get("/search", params={"q": "zqxjv wqpf"})

    assert page.status_code == 200 and linked(page.text) == []
    assert "No skill matches “zqxjv wqpf”, not even by a close spelling." in words(page.text)
    assert 'value="zqxjv wqpf"' in page.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Type a skill's name or one of its aliases"),
        ("   ", "Type a skill's name or one of its aliases"),
        ("x" * 101, "That is 101 characters long; skill names are shorter than 100."),
        ("!!! ?? --", "A skill's name has letters or digits"),
        ("py\x01thon", "That holds control or broken characters"),
        ("py\x7fthon", "That holds control or broken characters"),
    ],
)
def test_empty_overlong_or_letterless_input_is_a_400_page_with_the_form(
    site: httpx.Client, query: str, message: str
) -> None:
    page = site.get("/search", params={"q": query})

    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert message in words(page.text)
    main = page.text[page.text.index("<main") :]
    assert 'action="/search"' in main and "\x01" not in page.text and "\x7f" not in page.text


@pytest.mark.parametrize("raw", ["q=%FF%FE", "q=%ED%A0%80", "q=a&q=b", "q=%25%5F", "q[]=x", "q=<script>"])
def test_malformed_query_strings_are_never_a_500(site: httpx.Client, raw: str) -> None:
    page = site.get(f"/search?{raw}")

    assert page.status_code in (200, 400)
    assert "<script>" not in page.text.replace("<script src=", "")


def test_a_display_name_as_a_slug_is_a_404_that_suggests_the_skill_and_offers_the_search(
    site: httpx.Client,
) -> None:
    page = site.get("/skills/large-language-model")

    assert page.status_code == 404
    assert "No skill called “large language model”" in words(page.text)
    assert linked(page.text)[0] == ("/skills/llm", "Large language model")
    main = page.text[page.text.index("<main") :]
    assert 'action="/search"' in main and 'value="large language model"' in main


@pytest.mark.parametrize("slug", ["kubernets", "pythn", "postgress", "javascrpt"])
def test_the_404_suggests_what_the_command_line_suggests(site: httpx.Client, rt: Runtime, slug: str) -> None:
    page = site.get(f"/skills/{slug}")
    typed = slug.replace("-", " ")
    with transaction(rt.sessions) as session:
        cli = unknown_skill(session, typed)
        want = [hit.name for hit in search_skills(session, typed, SUGGESTIONS)]

    assert page.status_code == 404
    assert [name for _, name in linked(page.text)] == want
    assert want and all(name in cli for name in want)


def test_a_404_with_nothing_close_says_so(site: httpx.Client) -> None:
    page = site.get("/skills/" + "zq" * 300)

    assert page.status_code == 404 and linked(page.text) == []
    assert "No skill has a close name" in words(page.text)
    assert f'value="{"zq" * 50}"' in page.text
