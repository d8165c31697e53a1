"""Skill figures: the daily tables a refresh rebuilds, and the figures read back from them, checked against
counts the test makes itself from the items it wrote; the change in words at its edges; the CLI.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings
from digest.db import transaction
from digest.ingest import taxonomy
from digest.ingest.skills import resolve_skill
from digest.models import Item, SkillDaily, SkillPairDaily, Tag
from digest.runtime import Runtime
from digest.site.figures import arithmetic, daily, read, records
from tests.figure_data import Posted, add_sources, corpus, expect, post, skill_ids


def first_and_last_day(posted: list[Posted], now: datetime) -> tuple[date, date]:
    return min(p.at for p in posted).date(), now.date()


def refresh_all(rt: Runtime, posted: list[Posted], now: datetime) -> records.RefreshResult:
    with transaction(rt.sessions) as session:
        return daily.refresh(session, *first_and_last_day(posted, now), now=now)


def daily_rows(rt: Runtime) -> dict[tuple[str, date, int], int]:
    with transaction(rt.sessions) as session:
        rows = session.execute(
            select(SkillDaily.skill_id, SkillDaily.day, SkillDaily.source_id, SkillDaily.items)
        )
        return {(skill, day, source): items for skill, day, source, items in rows.tuples()}


def pair_rows(rt: Runtime) -> dict[tuple[str, str, date], int]:
    with transaction(rt.sessions) as session:
        rows = session.execute(
            select(SkillPairDaily.skill_id, SkillPairDaily.other_id, SkillPairDaily.day, SkillPairDaily.items)
        )
        return {(skill, other, day): items for skill, other, day, items in rows.tuples()}


def source_of_items(rt: Runtime) -> dict[int, int]:
    with transaction(rt.sessions) as session:
        return dict(session.execute(select(Item.id, Item.source_id)).tuples().all())


@pytest.mark.parametrize(
    ("last", "prior", "percent", "words"),
    [
        (12, 10, 20, "up 20% vs the prior 4 weeks"),
        (97, 100, -3, "down 3% vs the prior 4 weeks"),
        (10, 10, 0, "flat vs the prior 4 weeks"),
        (1001, 1000, 0, "flat vs the prior 4 weeks"),
        (201, 200, 1, "up 1% vs the prior 4 weeks"),
        (1, 3, -67, "down 67% vs the prior 4 weeks"),
        (2, 1, 100, "up 100% vs the prior 4 weeks"),
        (0, 5, -100, "down 100% vs the prior 4 weeks"),
        (3, 0, None, "new this period"),
        (0, 0, None, "no items in either period"),
    ],
)
def test_the_change_is_a_rounded_percentage_in_words_at_every_edge(
    last: int, prior: int, percent: int | None, words: str
) -> None:
    change = arithmetic.change_between(last, prior)

    assert (change.last, change.prior, change.percent, change.words) == (last, prior, percent, words)


def test_the_weeks_end_today_and_add_up_to_the_window_with_the_oldest_cut_short() -> None:
    today = date(2026, 11, 16)

    spans = arithmetic.week_spans(today, 90)

    assert len(spans) == 13
    assert spans[-1] == (date(2026, 11, 10), today)
    assert spans[0] == (today - timedelta(days=89), today - timedelta(days=84))
    assert sum((end - start).days + 1 for start, end in spans) == 90
    assert all(later[0] == earlier[1] + timedelta(days=1) for earlier, later in pairwise(spans))


def test_why_an_item_matched_says_where_and_as_what() -> None:
    assert arithmetic.why_matched(["K8s"], True, 1) == "“K8s” in the title, once in all"
    why = arithmetic.why_matched(["Python", "python3"], False, 4)
    assert why == "“Python”, “python3” in the text, 4 times"


def test_a_refresh_counts_each_skill_per_utc_day_and_source_and_each_pair_both_ways(
    rt: Runtime, now: datetime
) -> None:
    posted = corpus(rt, now, count=150, days=20)
    sources = source_of_items(rt)
    expected_daily: Counter[tuple[str, date, int]] = Counter()
    expected_pairs: Counter[tuple[str, str, date]] = Counter()
    for p in posted:
        day = p.at.astimezone(UTC).date()
        for skill in p.skills:
            expected_daily[(skill, day, sources[p.item_id])] += 1
            expected_pairs.update((skill, other, day) for other in p.skills if other != skill)

    result = refresh_all(rt, posted, now)

    assert daily_rows(rt) == dict(expected_daily)
    assert pair_rows(rt) == dict(expected_pairs)
    assert (result.daily_rows, result.pair_rows) == (len(expected_daily), len(expected_pairs))
    assert result.days == (now.date() - min(p.at for p in posted).date()).days + 1


def test_refreshing_twice_leaves_the_same_rows(rt: Runtime, now: datetime) -> None:
    posted = corpus(rt, now, count=80, days=10)
    refresh_all(rt, posted, now)
    first = (daily_rows(rt), pair_rows(rt))

    refresh_all(rt, posted, now)

    assert (daily_rows(rt), pair_rows(rt)) == first


def test_an_item_moved_to_another_day_counts_on_its_new_day_only_and_a_deleted_one_not_at_all(
    rt: Runtime, now: datetime
) -> None:
    ids = skill_ids(rt)
    python, rust = ids["Python"], ids["Rust"]
    monday = now - timedelta(days=2)
    with transaction(rt.sessions) as session:
        source = add_sources(session, now)["Morning Wire"]
        moved = post(
            session,
            source,
            "Python and Rust notes",
            monday,
            [(python, ["Python"], True, 1), (rust, ["Rust"], False, 1)],
        )
        gone = post(session, source, "Python guide", monday, [(python, ["Python"], True, 1)])
        daily.refresh(session, monday.date(), now.date(), now=now)
    assert daily_rows(rt)[(python, monday.date(), source)] == 2

    tuesday = monday + timedelta(days=1)
    with transaction(rt.sessions) as session:
        # Issue 16: an item counts on the day it was published (re-dated by its feed here).
        session.execute(
            update(Item).where(Item.id == moved).values(published_at=tuesday, ingested_at=tuesday)
        )
        session.execute(update(Tag).where(Tag.item_id == moved).values(ingested_at=tuesday))
        session.execute(delete(Item).where(Item.id == gone))
        daily.refresh(session, monday.date(), now.date(), now=now)

    assert daily_rows(rt) == {(python, tuesday.date(), source): 1, (rust, tuesday.date(), source): 1}
    assert pair_rows(rt) == {(python, rust, tuesday.date()): 1, (rust, python, tuesday.date()): 1}


def test_a_refresh_of_old_days_does_not_move_data_as_of_backwards_but_counts_as_a_change(
    rt: Runtime, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        assert daily.data_as_of(session) is None
        daily.refresh(session, *daily.recent_days(now), now=now)
        assert daily.data_as_of(session) == now

    later = now + timedelta(hours=1)
    with transaction(rt.sessions) as session:
        daily.refresh(session, date(2026, 1, 1), date(2026, 1, 31), now=later)
        assert daily.data_as_of(session) == now
        assert daily.refresh_generation(session) == 2


def test_the_figures_match_what_the_test_counts_from_its_own_items(rt: Runtime, now: datetime) -> None:
    posted = corpus(rt, now)
    refresh_all(rt, posted, now)
    ids = skill_ids(rt)
    names = {skill_id: name for name, skill_id in ids.items()}
    today = now.date()

    for name in ("Python", "Rust"):
        want = expect(posted, ids[name], today)
        with transaction(rt.sessions) as session:
            got = read.skill_figures(session, ids[name], today)

        assert got.total == want.total > 0
        assert (got.change.last, got.change.prior) == (want.last, want.prior)
        assert got.change == arithmetic.change_between(want.last, want.prior)
        assert [(w.start, w.end, w.items) for w in got.weeks] == want.weeks
        assert {k.kind: k.items for k in got.kinds} == want.kinds
        assert [(s.name, s.items) for s in got.top_sources] == sorted(
            want.sources.items(), key=lambda pair: (-pair[1], pair[0])
        )
        assert {c.name: (c.items, c.share) for c in got.co_skills} == {
            names[other]: (count, round(count / want.total, 4)) for other, count in want.together.items()
        }
        assert (got.window_days, got.window_start, got.as_of) == (90, today - timedelta(days=89), now)


def test_a_skill_without_items_has_zeros_and_says_so(rt: Runtime, now: datetime) -> None:
    with transaction(rt.sessions) as session:
        got = read.skill_figures(session, resolve_skill(session, "Go").id, now.date())

    assert got.total == 0 and got.change.words == "no items in either period"
    assert [w.items for w in got.weeks] == [0] * 13
    assert got.top_sources == () and got.co_skills == () and got.as_of is None


def test_a_merged_skill_counts_towards_the_skill_it_was_merged_into(rt: Runtime, now: datetime) -> None:
    ids = skill_ids(rt)
    with transaction(rt.sessions) as session:
        source = add_sources(session, now)["Build Notes"]
        post(session, source, "Docker notes", now - timedelta(days=1), [(ids["Docker"], ["Docker"], True, 1)])
        post(session, source, "Rust notes", now - timedelta(days=1), [(ids["Rust"], ["Rust"], True, 1)])
        daily.refresh(session, *daily.recent_days(now), now=now)
        taxonomy.merge(session, resolve_skill(session, "Docker"), resolve_skill(session, "Rust"), now)

    with transaction(rt.sessions) as session:
        before_rebuild = read.skill_figures(session, ids["Rust"], now.date()).total
        daily.refresh(session, *daily.recent_days(now), now=now)
        after_rebuild = read.skill_figures(session, ids["Rust"], now.date()).total

    assert before_rebuild == after_rebuild == 2


def test_the_latest_items_are_newest_first_with_why_they_matched(rt: Runtime, now: datetime) -> None:
    posted = corpus(rt, now, count=60, days=5)
    python = skill_ids(rt)["Python"]
    newest = sorted((p for p in posted if python in p.skills), key=lambda p: p.at, reverse=True)[:10]

    with transaction(rt.sessions) as session:
        latest = read.latest_items(session, python)

    assert [item.title for item in latest] == [p.title for p in newest]
    assert all("“Python”" in item.why for item in latest)


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_HOME", str(settings.home))
    monkeypatch.setenv("DIGEST_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "test-secret-key-0123456789abcdefghijkl")


@pytest.mark.usefixtures("cli_env")
def test_the_stats_command_prints_the_same_figures_as_json_with_iso_dates(
    rt: Runtime, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The full rebuild starts at the first publication the figures reach from today: the test's today.
    monkeypatch.setattr("digest.cli.skills.clock", lambda: now)
    posted = corpus(rt, now, count=120, days=100)
    today = now.date()
    refreshed = CliRunner().invoke(app, ["skills", "refresh-figures", "--json"])
    assert refreshed.exit_code == 0, refreshed.output
    want = expect(posted, skill_ids(rt)["Python"], today)

    result = CliRunner().invoke(app, ["skills", "stats", "python3", "--today", today.isoformat(), "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["name"] == "Python" and data["total"] == want.total and data["today"] == today.isoformat()
    assert [(w["start"], w["end"], w["items"]) for w in data["weeks"]] == [
        (start.isoformat(), end.isoformat(), items) for start, end, items in want.weeks
    ]
    assert data["change"]["last"] == want.last and data["change"]["prior"] == want.prior
    assert len(data["latest"]) == 10 and data["latest"][0]["ingested_at"].endswith("Z")
    newest = max(p.at for p in posted if skill_ids(rt)["Python"] in p.skills)
    assert data["latest"][0]["published_at"] == records.iso(newest)
    assert json.loads(refreshed.output)["since"] == min(p.at for p in posted).date().isoformat()


@pytest.mark.usefixtures("cli_env", "rt")
def test_an_unknown_skill_is_one_line_with_suggestions() -> None:
    result = CliRunner().invoke(app, ["skills", "stats", "pythn", "--json"])

    assert result.exit_code == 1
    assert "no skill called 'pythn'; did you mean Python" in str(result.exception)
