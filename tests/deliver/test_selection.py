"""Ranking a window's items (digest/selection.py): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digest.deliver.selection import Candidate, choose, rank
from digest.ingest.dedupe import fingerprint
from digest.records import ItemForDigest

END = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
START = END - timedelta(days=1)
SKILLS = {"py": ("Python", "python"), "k8s": ("Kubernetes", "kubernetes")}


def candidate(
    item_id: int,
    *,
    score: float = 0.5,
    source: str = "Feed A",
    kind: str = "news",
    skill: str = "py",
    story: str | None = None,
    age: timedelta = timedelta(hours=1),
    in_title: bool = False,
) -> Candidate:
    item = ItemForDigest(
        item_id=item_id,
        title=f"Item {item_id}",
        url=f"https://example.org/{item_id}",
        summary="",
        source_name=source,
        source_kind=kind,
        published_at=END - age,
        ingested_at=END - age,
        skill_id=skill,
        matched=(SKILLS[skill][0],),
        in_title=in_title,
        score=score,
    )
    freshness = max(0.0, 1 - age / (END - START))
    print_ = fingerprint(item.title, item.summary, item.ingested_at)
    return Candidate(item, story or f"story-{item_id}", *SKILLS[skill], score + 0.3 * freshness, print_)


def ids(items: list[ItemForDigest]) -> list[int]:
    return [item.item_id for item in items]


def test_a_title_mention_ranks_above_a_body_mention() -> None:
    shown, _ = rank([candidate(1, score=0.125), candidate(2, score=0.375, in_title=True, source="B")], 20)

    assert ids(shown) == [2, 1]


def test_between_equal_matches_the_fresher_item_comes_first() -> None:
    old = candidate(1, age=timedelta(hours=20))
    new = candidate(2, age=timedelta(hours=1), source="Feed B")

    assert ids(rank([old, new], 20)[0]) == [2, 1]


def test_a_story_in_two_feeds_and_two_skills_appears_once_under_its_strongest_entry() -> None:
    weak = candidate(1, score=0.125, story="same", skill="py")
    strong = candidate(2, score=0.5, story="same", skill="k8s", source="Feed B")

    shown, rest = rank([weak, strong], 20)

    assert ids(shown) == [2] and rest == []


def test_one_source_does_not_crowd_the_top_of_a_digest() -> None:
    prolific = [candidate(n, score=0.5, source="Prolific") for n in range(1, 6)]
    other = candidate(9, score=0.4, source="Other")

    shown, _ = rank([*prolific, other], 3)

    assert 9 in ids(shown)


def test_news_blogs_and_papers_are_mixed_when_they_are_close() -> None:
    news = [candidate(n, score=0.5, source=f"News {n}", kind="news") for n in range(1, 6)]
    paper = candidate(10, score=0.45, source="arXiv", kind="paper")
    blog = candidate(11, score=0.45, source="A blog", kind="blog")

    shown, _ = rank([*news, paper, blog], 4)

    assert {10, 11} <= set(ids(shown))


def test_a_much_stronger_item_still_wins_over_balance() -> None:
    strong_news = [candidate(n, score=1.0, source=f"News {n}") for n in range(1, 4)]
    weak_paper = candidate(10, score=0.125, kind="paper", source="arXiv", age=timedelta(hours=23))

    assert 10 not in ids(rank([*strong_news, weak_paper], 3)[0])


def test_the_cap_keeps_the_best_and_counts_the_rest_per_skill() -> None:
    candidates = [candidate(n, score=0.5, source=f"S{n}", skill="py") for n in range(1, 6)]
    candidates += [candidate(n, score=0.25, source=f"S{n}", skill="k8s") for n in range(6, 9)]

    selection = choose(candidates, 4)

    assert selection.more == 4
    [python] = selection.sections
    assert (python.skill_name, len(python.items), python.more) == ("Python", 4, 1)


def test_every_candidate_is_either_shown_or_counted_once() -> None:
    candidates = [
        candidate(n, score=(n % 7) / 8, source=f"S{n % 3}", kind=("news", "blog", "paper")[n % 3])
        for n in range(1, 60)
    ]

    shown, rest = rank(candidates, 20)

    assert len(shown) == 20
    assert sorted(ids(shown) + ids(rest)) == list(range(1, 60))
