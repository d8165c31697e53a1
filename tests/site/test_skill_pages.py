"""Skill pages and the skill index through the web app: their figures against counts the test makes from its
own items, the chart and its table, the sign-up links, escaping, redirects and 404s, search and pages.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from digest.db import transaction
from digest.ingest import taxonomy
from digest.ingest.skills import resolve_skill
from digest.models import Skill
from digest.runtime import Runtime
from digest.site.figures import arithmetic, daily, ranking, records
from digest.web import create_app
from tests.figure_data import SOURCES, Posted, add_sources, corpus, expect, post, skill_ids
from tests.web_support import serve

KIND_OF = dict(SOURCES)


@pytest.fixture
def client(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        yield http


@pytest.fixture
def posted(rt: Runtime, now: datetime) -> list[Posted]:
    items = corpus(rt, now)
    with transaction(rt.sessions) as session:
        daily.refresh(session, min(p.at for p in items).date(), now.date(), now=now)
    return items


def text_of(page: str) -> str:
    """The page as a reader sees its words: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%"


def test_a_skill_page_shows_the_figures_the_test_counts_from_its_items(
    client: httpx.Client, rt: Runtime, now: datetime, posted: list[Posted]
) -> None:
    ids = skill_ids(rt)
    names = {skill_id: name for name, skill_id in ids.items()}
    want = expect(posted, ids["Python"], now.date())

    page = client.get("/skills/python")

    assert page.status_code == 200
    words = text_of(page.text)
    assert f"{want.total:,} items mentioned Python" in words
    change = arithmetic.change_between(want.last, want.prior)
    assert f"In the last 4 weeks: {want.last:,}, {change.words}" in words
    assert f"({want.prior:,} in the 4 weeks before)" in words
    for start, end, items in want.weeks:
        assert f"<tr><td>{start.isoformat()}</td><td>{end.isoformat()}</td><td>{items}</td></tr>" in page.text
    for kind, items in want.kinds.items():
        assert f"{kind}: {items:,} ({percent(items, want.total)})" in words
    for source, items in want.sources.items():
        assert f"<tr><td>{source}</td><td>{KIND_OF[source]}</td><td>{items:,}</td></tr>" in page.text
    for other, items in want.together.items():
        assert f"{names[other]} {items:,} {percent(items, want.total)}" in words
    assert "Data as of 2026-11-16 09:30 UTC; window 90 days (2026-08-19 to 2026-11-16, UTC days)" in words


def test_the_latest_items_are_listed_newest_first_with_why_they_matched(
    client: httpx.Client, rt: Runtime, posted: list[Posted]
) -> None:
    rust = skill_ids(rt)["Rust"]
    newest = sorted((p for p in posted if rust in p.skills), key=lambda p: p.at, reverse=True)[:10]

    words = text_of(client.get("/skills/rust").text)

    positions = [words.index(p.title) for p in newest]
    assert positions == sorted(positions)
    assert f"matched “Rust” in the {'title' if newest[0].title.startswith('Rust') else 'text'}" in words


def test_a_story_in_three_sources_is_listed_once_also_in_two_sources_and_different_ones_apart(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    python = skill_ids(rt)["Python"]
    tags = [(python, ["Python"], True, 1)]
    with transaction(rt.sessions) as session:
        sources = add_sources(session, now)
        for hours, name in enumerate(("Morning Wire", "Evening Wire", "Build Notes")):
            post(session, sources[name], "Python 3.15 drops the GIL", now - timedelta(hours=3 + hours), tags)
        post(session, sources["Morning Wire"], "Python tools release v1.2", now - timedelta(hours=2), tags)
        post(session, sources["Evening Wire"], "Python tools release v1.3", now - timedelta(hours=2), tags)

    page = client.get("/skills/python").text
    words = text_of(page)

    assert words.count("Python 3.15 drops the GIL") == 1
    assert "Morning Wire (news), published" in words
    assert (
        words.count("Also in") == 1 and "Also in 2 sources: Evening Wire , Build Notes" in words
    )  # links split by tags
    assert "release v1.2" in words and "release v1.3" in words
    assert page.count('<a href="https://site.example/') == 5


def test_the_latest_items_show_and_follow_their_publication_date_not_when_we_stored_them(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    python = skill_ids(rt)["Python"]
    tags = [(python, ["Python"], True, 1)]
    with transaction(rt.sessions) as session:
        source = add_sources(session, now)["Morning Wire"]
        post(session, source, "Python this morning", now - timedelta(hours=3), tags)
        post(
            session,
            source,
            "Python from 2019",
            now - timedelta(hours=1),
            tags,
            datetime(2019, 5, 1, tzinfo=UTC),
        )

    words = text_of(client.get("/skills/python").text)

    assert words.index("Python this morning") < words.index("Python from 2019")
    assert "Python from 2019 Morning Wire (news), published 2019-05-01" in words
    assert "Python this morning Morning Wire (news), published 2026-11-16" in words


def test_the_weekly_chart_is_inline_svg_with_a_title_a_label_and_no_scripts(
    client: httpx.Client, posted: list[Posted]
) -> None:
    page = client.get("/skills/python").text

    svg = page[page.index("<svg") : page.index("</svg>")]
    assert 'role="img"' in svg and "aria-label=" in svg and "<title>" in svg
    assert svg.count("<rect") == 13
    assert "<script" not in page and "src=" not in page


def test_the_page_offers_a_daily_digest_in_one_click_and_hourly_or_weekly_beside_it(
    client: httpx.Client, rt: Runtime
) -> None:
    page = client.get("/skills/kubernetes").text

    daily = re.search(r'<a href="([^"]+)"[^>]*>Get a daily digest of new Kubernetes content</a>', page)
    assert daily and html.unescape(daily.group(1)) == "/subscribe?skill=kubernetes&cadence=daily"
    assert 'href="/subscribe?skill=kubernetes&amp;cadence=hourly"' in page
    assert 'href="/subscribe?skill=kubernetes&amp;cadence=weekly"' in page
    assert client.get("/subscribe?skill=kubernetes&cadence=daily").status_code == 200


def test_a_skill_without_items_says_so_in_one_line_without_a_chart_and_still_offers_the_digest(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    before = client.get("/skills/go").text
    with transaction(rt.sessions) as session:
        daily.refresh(session, *daily.recent_days(now), now=now)
    after = client.get("/skills/go").text

    # Issue 17: no "0 items" before the figures exist (it would contradict the items listed), no empty chart.
    assert "Figures not computed yet: the counts appear" in text_of(before)
    assert "0 items" not in text_of(before)
    assert "No items mentioned Go in the last 90 days." in text_of(after)
    for page in (before, after):
        words = text_of(page)
        assert "<svg" not in page and "No items mention Go yet" in words
        assert "Get a daily digest of new Go content" in words


def test_item_titles_and_source_names_are_escaped(client: httpx.Client, rt: Runtime, now: datetime) -> None:
    python = skill_ids(rt)["Python"]
    with transaction(rt.sessions) as session:
        source = add_sources(session, now)["Morning Wire"]
        post(session, source, '<script>alert("x")</script> & Python', now, [(python, ["Python"], True, 1)])

    page = client.get("/skills/python").text

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Python" in page


def test_an_unknown_slug_is_a_404_page(client: httpx.Client) -> None:
    page = client.get("/skills/no-such-skill")

    assert page.status_code == 404
    assert "no skill called" in page.text.lower() and "<html" in page.text


def test_a_merged_skill_and_an_alias_redirect_to_the_canonical_page(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        taxonomy.merge(session, resolve_skill(session, "Docker"), resolve_skill(session, "Kubernetes"), now)

    merged = client.get("/skills/docker")
    alias = client.get("/skills/k8s")

    assert (merged.status_code, merged.headers["location"]) == (301, "/skills/kubernetes")
    assert (alias.status_code, alias.headers["location"]) == (301, "/skills/kubernetes")
    assert client.get("/skills/kubernetes").status_code == 200


def index_rows(page: str) -> list[tuple[str, int]]:
    return [
        (name, int(count.replace(",", "")))
        for name, count in re.findall(
            r'<tr><td><a href="/skills/[^"]+">([^<]+)</a></td><td>([\d,]+)</td></tr>', page
        )
    ]


def test_the_index_lists_skills_by_their_items_in_90_days(
    client: httpx.Client, rt: Runtime, now: datetime, posted: list[Posted]
) -> None:
    ids = skill_ids(rt)
    want = {name: expect(posted, skill_id, now.date()).total for name, skill_id in ids.items()}

    rows = index_rows(client.get("/skills").text)

    assert rows[: len(want)] == sorted(want.items(), key=lambda pair: (-pair[1], pair[0].casefold()))
    assert all(count == 0 for _, count in rows[len(want) :])


def test_the_index_breaks_ties_in_items_by_popularity_then_name(client: httpx.Client, rt: Runtime) -> None:
    ids = skill_ids(rt)
    with transaction(rt.sessions) as session:
        session.execute(update(Skill).values(popularity=0.0))
        session.execute(update(Skill).where(Skill.id == ids["Rust"]).values(popularity=0.9))
        session.execute(update(Skill).where(Skill.id == ids["Docker"]).values(popularity=0.5))
        names = sorted(
            session.scalars(select(Skill.name).where(Skill.merged_into.is_(None))), key=str.casefold
        )

    rows = index_rows(client.get("/skills").text)

    assert [name for name, _ in rows] == [
        "Rust",
        "Docker",
        *(n for n in names if n not in {"Rust", "Docker"}),
    ]
    assert all(count == 0 for _, count in rows)


def test_the_index_shows_new_totals_once_a_refresh_has_counted_them(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    rust = skill_ids(rt)["Rust"]
    before = dict(index_rows(client.get("/skills").text))["Rust"]
    with transaction(rt.sessions) as session:
        source = add_sources(session, now)["Preprints"]
        post(session, source, "Rust lessons", now - timedelta(hours=1), [(rust, ["Rust"], True, 1)])
    not_yet = dict(index_rows(client.get("/skills").text))["Rust"]
    with transaction(rt.sessions) as session:
        daily.refresh(session, *daily.recent_days(now), now=now)

    after = dict(index_rows(client.get("/skills").text))["Rust"]

    assert (before, not_yet, after) == (0, 0, 1)


def test_the_index_follows_a_merge_at_once(
    client: httpx.Client, rt: Runtime, now: datetime, posted: list[Posted]
) -> None:
    before = dict(index_rows(client.get("/skills").text))
    with transaction(rt.sessions) as session:
        taxonomy.merge(session, resolve_skill(session, "Docker"), resolve_skill(session, "Kubernetes"), now)

    after = dict(index_rows(client.get("/skills").text))

    assert "Docker" in before and "Docker" not in after
    # Until the days are rebuilt, an item tagged with both counts twice (ranking.skill_volumes).
    assert after["Kubernetes"] == before["Kubernetes"] + before["Docker"]


def test_the_index_search_matches_names_and_aliases(client: httpx.Client, posted: list[Posted]) -> None:
    by_alias = client.get("/skills", params={"q": "K8S"}).text
    by_name = client.get("/skills", params={"q": "gres"}).text
    nothing = client.get("/skills", params={"q": "%_"}).text

    assert [name for name, _ in index_rows(by_alias)] == ["Kubernetes"]
    assert [name for name, _ in index_rows(by_name)] == ["PostgreSQL"]
    assert index_rows(nothing) == [] and "0 skills match" in text_of(nothing)


def test_the_index_pages_do_not_overlap_and_a_page_past_the_end_is_the_last(rt: Runtime) -> None:
    with transaction(rt.sessions) as session:
        ranked = ranking.ranked_skills(session, {})
        everything = ranking.skill_index(session, ranked, page_size=5)
        second = ranking.skill_index(session, ranked, page=2, page_size=5)
        past_the_end = ranking.skill_index(session, ranked, page=99, page_size=5)

    assert everything.pages == second.pages == -(-everything.matches // 5) > 1
    assert not {s.slug for s in everything.skills} & {s.slug for s in second.skills}
    assert past_the_end.page == everything.pages


def test_the_index_links_between_pages_and_keeps_the_search(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "INDEX_PAGE_SIZE", 3)
    matches = len(index_rows(client.get("/skills", params={"q": "a", "page": "1"}).text))

    first = client.get("/skills", params={"q": "a"}).text
    second = client.get("/skills", params={"q": "a", "page": "2"}).text

    assert matches == 3
    assert 'href="/skills?q=a&amp;page=2" rel="next"' in first and 'rel="prev"' not in first
    assert 'href="/skills?q=a&amp;page=1" rel="prev"' in second
    assert not set(index_rows(first)) & set(index_rows(second))
    assert client.get("/skills", params={"page": "x"}).status_code == 200


def test_figures_use_the_clock_of_the_app_for_today(rt: Runtime, now: datetime, posted: list[Posted]) -> None:
    later = now + timedelta(days=30)
    with serve(create_app(rt.settings, clock=lambda: later)) as http:
        words = text_of(http.get("/skills/python").text)

    assert f"to {later.date().isoformat()}, UTC days" in words
