"""``digest taxonomy audit``: the aliases and skills most likely to tag the wrong thing (issue 15).

- dictionary words without a rule: a one-word alias that is an English word
  (``digest/data/english-words.txt``, SCOWL) or a listed homonym (``digest/data/homonyms.txt``) but is
  neither ambiguous (needs evidence) nor case-sensitive, so "a ray of light" would tag it, unless
  ``digest/data/senses.yaml`` says the word has one sense ("malware");
- aliases shared by two or more live skills: one written name, several senses;
- silent skills: live skills with no tag in the last 90 days (the most popular first: a popular skill that
  never tags has lost its aliases or its evidence);
- one-source skills: skills whose tags in that window come mostly from one feed, where one site's habit
  ("Slack" in every footer) can pass for interest.

Pure reads; ``now`` comes from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.ingest.taxonomy.files import DATA
from digest.ingest.taxonomy.senses import Senses, is_dictionary_word, read_senses
from digest.models import Item, Skill, SkillAlias, Source, Tag

WINDOW = timedelta(days=90)
# A skill needs this many tags before the share of its top source says anything.
MIN_TAGS = 10
ONE_SOURCE_SHARE = 0.8
LIMIT = 50


@dataclass(frozen=True, slots=True)
class RiskyAlias:
    """An alias and the skill it names."""

    alias: str
    skill_id: str
    skill: str


@dataclass(frozen=True, slots=True)
class SharedAlias:
    """One written name that several live skills have."""

    alias: str
    skills: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OneSource:
    """A skill whose tags come mostly from one source."""

    skill_id: str
    skill: str
    source: str
    tags: int
    share: float


@dataclass(frozen=True, slots=True)
class Audit:
    """What ``digest taxonomy audit`` reports: counts, and up to ``LIMIT`` examples of each."""

    words_without_rule: int
    words_without_rule_examples: tuple[RiskyAlias, ...]
    shared_aliases: int
    shared_alias_examples: tuple[SharedAlias, ...]
    silent_skills: int
    silent_skill_examples: tuple[str, ...]
    one_source_skills: int
    one_source_examples: tuple[OneSource, ...]


def read_words(folder: Path = DATA) -> frozenset[str]:
    """The shipped English word list and the homonyms of technology names, lower case."""
    words: set[str] = set()
    for name in ("english-words.txt", "homonyms.txt"):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            words.update(line.split("#", 1)[0].split())
    return frozenset(words)


def audit(
    session: Session, now: datetime, words: frozenset[str], limit: int = LIMIT, senses: Senses | None = None
) -> Audit:
    """Audit the taxonomy loaded in ``session`` against the tags of the last ``WINDOW``."""
    senses = senses if senses is not None else read_senses()
    live = (
        select(
            SkillAlias.text,
            SkillAlias.folded,
            SkillAlias.ambiguous,
            SkillAlias.case_sensitive,
            SkillAlias.source,
            Skill,
        )
        .join(Skill, Skill.id == SkillAlias.skill_id)
        .where(Skill.merged_into.is_(None))
        .order_by(Skill.popularity.desc(), Skill.name, SkillAlias.text)
    )
    risky: list[RiskyAlias] = []
    owners: dict[str, dict[str, str]] = {}
    for text, folded, ambiguous, case_sensitive, source, skill in session.execute(live):
        owners.setdefault(folded, {})[skill.id] = skill.name
        if ambiguous or case_sensitive or not is_dictionary_word(folded, words):
            continue
        found = senses.rule_for(text, skill.key, skill.category, source)
        if found is None or found.rule != "one-sense":
            risky.append(RiskyAlias(text, skill.id, skill.name))
    shared = [
        SharedAlias(alias, tuple(sorted(names.values()))) for alias, names in owners.items() if len(names) > 1
    ]
    since = now - WINDOW
    tagged = select(Tag.skill_id).where(Tag.ingested_at >= since).distinct()
    silent = session.scalars(
        select(Skill.name)
        .where(Skill.merged_into.is_(None), Skill.id.not_in(tagged))
        .order_by(Skill.popularity.desc(), Skill.name)
    ).all()
    one_source = _one_source(session, since)
    return Audit(
        words_without_rule=len(risky),
        words_without_rule_examples=tuple(risky[:limit]),
        shared_aliases=len(shared),
        shared_alias_examples=tuple(sorted(shared, key=lambda item: item.alias)[:limit]),
        silent_skills=len(silent),
        silent_skill_examples=tuple(silent[:limit]),
        one_source_skills=len(one_source),
        one_source_examples=tuple(one_source[:limit]),
    )


def _one_source(session: Session, since: datetime) -> list[OneSource]:
    per_source = (
        select(Tag.skill_id, Item.source_id, func.count().label("tags"))
        .join(Item, Item.id == Tag.item_id)
        .where(Tag.ingested_at >= since)
        .group_by(Tag.skill_id, Item.source_id)
    )
    counts: dict[str, dict[int, int]] = {}
    for skill_id, source_id, tags in session.execute(per_source):
        counts.setdefault(skill_id, {})[source_id] = tags
    found: list[tuple[str, int, int, int]] = []
    for skill_id, by_source in counts.items():
        total = sum(by_source.values())
        source_id, top = max(by_source.items(), key=lambda pair: (pair[1], -pair[0]))
        if total >= MIN_TAGS and top >= ONE_SOURCE_SHARE * total:
            found.append((skill_id, source_id, top, total))
    if not found:
        return []
    names = dict(
        session.execute(select(Skill.id, Skill.name).where(Skill.id.in_([f[0] for f in found])))
        .tuples()
        .all()
    )
    sources = dict(
        session.execute(select(Source.id, Source.name).where(Source.id.in_([f[1] for f in found])))
        .tuples()
        .all()
    )
    rows = [
        OneSource(
            skill_id,
            names.get(skill_id, skill_id),
            sources.get(source_id, str(source_id)),
            total,
            top / total,
        )
        for skill_id, source_id, top, total in found
    ]
    return sorted(rows, key=lambda row: (-row.tags, row.skill))
