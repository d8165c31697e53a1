"""Sources per skill (issue 16): templates, the feeds a skill gets, their life with its subscribers, and a
crawl of every template's format through the loopback server (nothing here reaches the real services)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest.db import transaction
from digest.deliver.cadence import Schedule
from digest.deliver.selection import select_window
from digest.deliver.subscribers import subscribe
from digest.deliver.unsubscribe import unsubscribe
from digest.errors import InvalidInputError
from digest.ingest import coverage, crawl, queries
from digest.ingest.skills import resolve_skill
from digest.models import Item, SkillSource, Source, Subscription
from digest.runtime import Runtime
from tests.ingest.test_feeds_cli import digest, run_json
from tests.support import FeedServer, Route, feed_server

FIXTURES = Path(__file__).parent.parent / "data" / "query_feeds"
PYTORCH = queries.SkillTerms("pt", "PyTorch", ("Torch Lib",), "pytorch/pytorch")
DAILY = Schedule("daily", 8, 0, "UTC")
# Every template's format, served on loopback under the template's name.
ROUTES = {
    "/arxiv": ("arxiv-testing-s0.atom.xml", "paper"),
    "/arxiv-next": ("arxiv-testing-s5.atom.xml", "paper"),
    "/devto": ("devto-pytorch.rss", "blog"),
    "/hackernews": ("hnrss-pytorch.rss", "news"),
    "/medium": ("medium-pytorch.rss", "blog"),
    "/github-releases": ("github-releases-pytorch.atom", "news"),
}


def test_a_skill_gets_an_arxiv_search_a_news_query_tag_feeds_and_its_releases() -> None:
    found = {source.template: source for source in queries.sources_for(PYTORCH, queries.bundled_templates())}

    assert found["arxiv"].url == (
        "https://export.arxiv.org/api/query?search_query=all%3A%22PyTorch%22+OR+all%3A%22Torch+Lib%22"
        "&sortBy=submittedDate&sortOrder=descending"
    )
    assert found["arxiv"].kind == "paper"
    assert found["hackernews"].url == "https://hnrss.org/newest?q=PyTorch"
    assert found["devto"].url == "https://dev.to/feed/tag/pytorch"
    assert found["medium"].url == "https://medium.com/feed/tag/pytorch"
    assert (found["github-releases"].url, found["github-releases"].kind) == (
        "https://github.com/pytorch/pytorch/releases.atom",
        "news",
    )
    assert found["hackernews"].as_json() == {
        "url": "https://hnrss.org/newest?q=PyTorch",
        "kind": "news",
        "template": "hackernews",
        "reason": "Hacker News stories that mention PyTorch",
    }


def test_a_phrase_is_quoted_and_a_name_that_is_no_tag_gets_no_tag_feeds() -> None:
    terms = queries.SkillTerms("llm", "Large language model", ("LLMs",), None)

    found = {
        source.template: source.url
        for source in queries.sources_for(terms, queries.bundled_templates(), points=50)
    }

    assert found == {
        "arxiv": "https://export.arxiv.org/api/query?search_query=all%3A%22Large+language+model%22+OR+"
        "all%3A%22LLMs%22&sortBy=submittedDate&sortOrder=descending",
        "hackernews": "https://hnrss.org/newest?q=%22Large+language+model%22&points=50",
    }


def test_ops_can_add_a_template_and_a_bad_one_is_named(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "- {name: lobsters, kind: news, url: 'https://lobste.rs/t/{tag}.rss', every: 3600,"
        " title: 'Lobsters: {tag}', reason: 'Lobsters stories tagged {tag}'}\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "- {name: plain, kind: news, url: 'http://example.com/{skill}', every: 60, title: t, reason: r}\n"
    )

    [template] = queries.load_templates(good)
    [source] = queries.sources_for(PYTORCH, [template])
    assert source.url == "https://lobste.rs/t/pytorch.rss"
    with pytest.raises(InvalidInputError, match="plain"):
        queries.load_templates(bad)


def test_a_first_subscriber_adds_the_skills_feeds_shared_by_url_paused_when_idle_and_resumed(
    rt: Runtime, now: datetime
) -> None:
    templates, repositories = queries.bundled_templates(), {"pytorch": "pytorch/pytorch"}
    with transaction(rt.sessions) as session:
        subscription = subscribe(session, "a@example.com", ("PyTorch",), DAILY, now, confirmed=True)
        first = queries.reconcile(session, now, templates, repositories)
        again = queries.reconcile(session, now, templates, repositories)
        pytorch = resolve_skill(session, "PyTorch")
        deep = resolve_skill(session, "Deep learning")
        hn = queries.sources_for(queries.skill_terms(session, pytorch, repositories), templates)[1]
        queries.add_sources(session, deep.id, [hn], now)
        feeds = session.scalar(select(func.count()).select_from(Source))
        links = session.scalar(select(func.count()).select_from(SkillSource))
    with transaction(rt.sessions) as session:
        unsubscribe(session, subscription.id)
        early = queries.reconcile(session, now + timedelta(days=29), templates, repositories)
        idle = queries.reconcile(session, now + timedelta(days=31), templates, repositories)
        states = set(session.scalars(select(Source.state)))
    with transaction(rt.sessions) as session:
        subscribe(session, "b@example.com", ("PyTorch",), DAILY, now + timedelta(days=40), confirmed=True)
        back = queries.reconcile(session, now + timedelta(days=40), templates, repositories)
        resumed = set(session.scalars(select(Source.state)))

    assert (first.added, again.added) == (5, 0)
    assert (feeds, links) == (5, 6)
    assert (early.paused, idle.paused) == (0, 5) and states == {"paused"}
    assert (back.added, back.resumed) == (0, 5) and resumed == {"active"}


def test_a_feed_paused_by_ops_stays_paused_when_subscribers_come_back(rt: Runtime, now: datetime) -> None:
    templates = queries.bundled_templates()
    with transaction(rt.sessions) as session:
        subscribe(session, "a@example.com", ("Rust",), DAILY, now, confirmed=True)
        queries.reconcile(session, now, templates, {})
        source = session.scalars(select(Source).limit(1)).one()
        source.state = "paused"
    with transaction(rt.sessions) as session:
        result = queries.reconcile(session, now + timedelta(minutes=1), templates, {})
        state = session.get(Source, source.id)

    assert result.resumed == 0 and state is not None and state.state == "paused"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        for path, (name, _) in ROUTES.items():
            running.routes[path] = Route((FIXTURES / name).read_bytes())
        yield running


def test_a_crawl_of_every_template_format_ingests_folds_and_tags_the_stories(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        ids = {}
        for path, (_, kind) in ROUTES.items():
            source = Source(url=server.url(path), name=path[1:], kind=kind, next_fetch_at=now, created_at=now)
            session.add(source)
            session.flush()
            ids[path] = source.id
        subscribe(session, "a@example.com", ("PyTorch",), DAILY, now, confirmed=True)
    outcomes = {
        path: crawl.refresh_and_tag(rt.sessions, rt.fetcher, rt.matchers, source_id, now, random.Random(1))
        for path, source_id in ids.items()
    }
    with transaction(rt.sessions) as session:
        pytorch = resolve_skill(session, "PyTorch")
        digest_entries = select_window(
            session, [pytorch.id], now - timedelta(days=1), now + timedelta(hours=1), 50
        )
        papers = session.execute(
            select(Item.story_key).where(Item.source_id.in_([ids["/arxiv"], ids["/arxiv-next"]]))
        ).all()
        covered = coverage.coverage(session, now + timedelta(hours=1))

    assert {path: outcome.status for path, outcome in outcomes.items()} == dict.fromkeys(ROUTES, "ok")
    assert {path: outcome.new for path, outcome in outcomes.items()} == {
        "/arxiv": 10,
        "/arxiv-next": 10,
        "/devto": 2,
        "/hackernews": 2,
        "/medium": 2,
        "/github-releases": 1,
    }
    # The two arXiv pages overlap by five papers: one story each, by arXiv id.
    assert len(papers) == 20 and len({key for (key,) in papers}) == 15
    [section] = digest_entries.sections
    titles = sorted(item.title for item in section.items)
    # Nine PyTorch items, six stories: the HN link to the DEV post (tracking stripped) and Medium's
    # cross-post of it (near duplicate) fold into the DEV post.
    assert titles == [
        "Ask HN: Is anyone still training on CPUs with PyTorch?",
        "Five PyTorch habits I dropped after profiling",
        "Mixed precision in PyTorch: what changed in my training loop",
        "PyTorch 9.9.1 Release, bug fix release",
        "Serving PyTorch models behind a queue, without losing requests",
        "Show HN: A tiny profiler for PyTorch data loaders",
    ]
    assert digest_entries.more == 0
    [serving] = [item for item in section.items if item.title.startswith("Serving")]
    assert serving.source_name == "devto"
    assert serving.discussion_url == "https://news.ycombinator.com/item?id=46100001"
    [row] = [row for row in covered if row.name == "PyTorch"]
    assert (row.subscribers, row.sources_30d, row.items_7d, row.items_30d) == (1, 4, 7, 7)


@pytest.mark.slow
def test_the_cli_shows_a_skills_sources_and_a_confirmed_subscription_adds_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert digest(home, "db", "upgrade").returncode == 0

    shown = run_json(home, "skills", "sources", "PyTorch")
    before = run_json(home, "feeds", "list")
    run_json(home, "subscribe", "a@example.com", "--skill", "PyTorch", "--confirmed")
    after = run_json(home, "feeds", "list")
    unknown = digest(home, "skills", "sources", "no-such-skill-xyz")

    assert isinstance(shown, list) and isinstance(after, list)
    templates = {row["template"]: row for row in shown}
    assert templates["arxiv"]["kind"] == "paper" and templates["hackernews"]["kind"] == "news"
    assert templates["devto"]["kind"] == "blog"
    assert before == []
    assert {row["url"] for row in after} == {row["url"] for row in shown}
    assert unknown.returncode == 1 and len(unknown.stderr.strip().splitlines()) == 1


def test_coverage_lists_only_followed_skills_worst_covered_first(rt: Runtime, now: datetime) -> None:
    with transaction(rt.sessions) as session:
        subscribe(session, "a@example.com", ("Rust", "Go"), DAILY, now, confirmed=True)
        subscribe(session, "b@example.com", ("Go",), DAILY, now, confirmed=True)
        subscribe(session, "c@example.com", ("Python",), DAILY, now, confirmed=False)
        rows = coverage.coverage(session, now)
        states = set(session.scalars(select(Subscription.state)))

    assert states == {"active", "pending"}
    assert [(row.name, row.subscribers) for row in rows] == [("Go", 2), ("Rust", 1)]
    assert rows[0].as_json()["last_published"] is None
