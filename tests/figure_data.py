"""Tagged items written straight into the database for the skill figure tests, and the same figures
counted here in plain Python from what was written (never through ``digest.site.figures``).

Every title and name is made up here; none comes from the feed fixtures.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from digest.db import transaction
from digest.ingest.skills import resolve_skill
from digest.runtime import Runtime
from tests.factories import NewItem, NewTag, add_items, add_source

SKILLS = ("Python", "Kubernetes", "Rust", "Docker", "PostgreSQL")
SOURCES = (
    ("Morning Wire", "news"),
    ("Evening Wire", "news"),
    ("Build Notes", "blog"),
    ("Preprints", "paper"),
)
WORDS = ("notes", "release", "guide", "lessons", "benchmark", "migration", "patterns", "review")


@dataclass(frozen=True)
class Posted:
    """One item as the test wrote it."""

    item_id: int
    title: str
    source: str
    kind: str
    at: datetime
    skills: tuple[str, ...]


def add_sources(session: Session, now: datetime) -> dict[str, int]:
    """The test's sources, by name."""
    return {
        name: add_source(session, name, now, kind=kind, url=f"https://feeds{number}.example/rss")
        for number, (name, kind) in enumerate(SOURCES)
    }


def post(
    session: Session,
    source_id: int,
    title: str,
    at: datetime,
    skills: list[tuple[str, list[str], bool, int]],
    published: datetime | None = None,
) -> int:
    """Store one item first seen ``at`` and tagged with (skill id, matched forms, in title, mentions) and
    return its id; it was published ``published`` (default: when it was first seen)."""
    [item_id] = add_items(session, [_item(source_id, title, at, skills, published)])
    return item_id


def _item(
    source_id: int,
    title: str,
    at: datetime,
    skills: list[tuple[str, list[str], bool, int]],
    published: datetime | None = None,
) -> NewItem:
    tags = tuple(NewTag(skill_id, matched, in_title, count) for skill_id, matched, in_title, count in skills)
    return NewItem(source_id, title, at, tags, published)


def skill_ids(rt: Runtime) -> dict[str, str]:
    """The ids of ``SKILLS`` in the small test taxonomy, by name."""
    with transaction(rt.sessions) as session:
        return {name: resolve_skill(session, name).id for name in SKILLS}


def corpus(rt: Runtime, now: datetime, count: int = 400, days: int = 120, seed: int = 8) -> list[Posted]:
    """``count`` items spread over the ``days`` days before ``now``, each with one to three skills."""
    rng = random.Random(seed)
    ids = skill_ids(rt)
    drawn = []
    with transaction(rt.sessions) as session:
        sources = add_sources(session, now)
        for number in range(count):
            at = now - timedelta(minutes=rng.randint(0, days * 24 * 60 - 1))
            names = rng.sample(SKILLS, rng.choice((1, 1, 2, 3)))
            # Python is the busiest skill, with more in the last four weeks, so its change is "up".
            if "Python" not in names and rng.random() < (0.5 if now - at < timedelta(days=28) else 0.2):
                names.append("Python")
            title = f"{names[0]} {rng.choice(WORDS)} {number}"
            source, kind = rng.choice(SOURCES)
            tags = [
                (ids[name], [name], position == 0, rng.randint(1, 3)) for position, name in enumerate(names)
            ]
            drawn.append((_item(sources[source], title, at, tags), source, kind, names))
        item_ids = add_items(session, [item for item, _, _, _ in drawn])
    return [
        Posted(item_id, item.title, source, kind, item.at, tuple(ids[name] for name in names))
        for item_id, (item, source, kind, names) in zip(item_ids, drawn, strict=True)
    ]


@dataclass(frozen=True)
class Expected:
    """A skill's figures counted by the test."""

    total: int
    last: int
    prior: int
    weeks: list[tuple[date, date, int]]
    kinds: dict[str, int]
    sources: Counter[str]
    together: Counter[str]


def expect(posted: list[Posted], skill_id: str, today: date, window_days: int = 90) -> Expected:
    """Count ``skill_id``'s items in the window ending ``today`` from what the test wrote."""
    mine = [p for p in posted if skill_id in p.skills]

    def on(first: date, last: date) -> list[Posted]:
        return [p for p in mine if first <= p.at.astimezone(UTC).date() <= last]

    start = today - timedelta(days=window_days - 1)
    window = on(start, today)
    weeks = []
    end = today
    while end >= start:
        first = max(start, end - timedelta(days=6))
        weeks.append((first, end, len(on(first, end))))
        end = first - timedelta(days=1)
    kinds = {"news": 0, "blog": 0, "paper": 0}
    for p in window:
        kinds[p.kind] += 1
    together: Counter[str] = Counter()
    for p in window:
        together.update(other for other in p.skills if other != skill_id)
    return Expected(
        total=len(window),
        last=len(on(today - timedelta(days=27), today)),
        prior=len(on(today - timedelta(days=55), today - timedelta(days=28))),
        weeks=list(reversed(weeks)),
        kinds=kinds,
        sources=Counter(p.source for p in window),
        together=together,
    )
