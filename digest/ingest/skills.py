"""Finding skills by what people type: ids, names, slugs and aliases, case-insensitively, following merges."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from digest.errors import NotFoundError
from digest.models import Skill, SkillAlias

SEARCH_LIMIT = 10
# Suggestions after an unknown skill: enough to catch a typo, few enough to read in one line.
SUGGESTIONS = 3


@dataclass(frozen=True, slots=True)
class SkillHit:
    """A skill found by a search, and the text that found it."""

    id: str
    name: str
    slug: str
    category: str
    matched: str


def resolve_skill(session: Session, query: str) -> Skill:
    """A skill by id, slug, name or alias (case-insensitive), following merges; else ``NotFoundError``.

    Of skills that share a name or alias, the most popular one (issue 15).
    """
    text = query.strip()
    folded = text.casefold()
    skill = (
        session.get(Skill, text.lower())
        or session.scalars(
            select(Skill)
            .where(or_(Skill.slug == folded, func.lower(Skill.name) == folded))
            .order_by(Skill.popularity.desc(), Skill.id)
            .limit(1)
        ).first()
    )
    if skill is None:
        skill = session.scalars(
            select(Skill)
            .join(SkillAlias, SkillAlias.skill_id == Skill.id)
            .where(SkillAlias.folded == folded)
            .order_by(Skill.merged_into.is_not(None), Skill.popularity.desc(), Skill.id)
            .limit(1)
        ).first()
    while skill is not None and skill.merged_into:
        skill = session.get(Skill, skill.merged_into)
    if skill is None:
        raise NotFoundError(f"no skill called {query!r}")
    return skill


def search_skills(session: Session, query: str, limit: int = SEARCH_LIMIT) -> list[SkillHit]:
    """The best matches for ``query``: exact name or alias first, then prefixes, then substrings, then
    close spellings ("pythn" finds Python); the most popular skills first within each kind (issue 15),
    then shorter names.
    """
    folded = " ".join(query.casefold().split())[:100]
    if not folded:
        return []
    pattern = f"%{folded.replace('%', '').replace('_', '')}%"
    rows = session.execute(
        select(Skill, SkillAlias.text)
        .join(SkillAlias, SkillAlias.skill_id == Skill.id)
        .where(
            Skill.merged_into.is_(None),
            or_(SkillAlias.folded.like(pattern), func.lower(Skill.name).like(pattern)),
        )
        .limit(500)
    ).all()
    ranked: dict[str, tuple[tuple[int, float, int, str], SkillHit]] = {}
    for skill, alias in rows:
        surface = alias if folded in alias.casefold() else skill.name
        rank = (_closeness(folded, surface.casefold()), -skill.popularity, len(skill.name), skill.name)
        hit = SkillHit(skill.id, skill.name, skill.slug, skill.category, surface)
        if skill.id not in ranked or rank < ranked[skill.id][0]:
            ranked[skill.id] = (rank, hit)
    hits = [hit for _, hit in sorted(ranked.values(), key=lambda pair: pair[0])][:limit]
    if len(hits) < limit:
        hits += _close_spellings(session, folded, limit - len(hits), {hit.id for hit in hits})
    return hits


def _closeness(query: str, text: str) -> int:
    if text == query:
        return 0
    if text.startswith(query):
        return 1
    if any(word.startswith(query) for word in text.split()):
        return 2
    return 3


def _close_spellings(session: Session, query: str, room: int, seen: set[str]) -> list[SkillHit]:
    # Names only, then the few close ones in full: building an object per skill (thousands) cost ten times
    # the comparison itself and set off garbage collections, on every typo a web visitor makes (issue 17,
    # bench/skill_pages.py). Of skills that share a name, the most popular (issue 15).
    active = Skill.merged_into.is_(None)
    names = {name.casefold(): name for name in session.scalars(select(Skill.name).where(active))}
    close = difflib.get_close_matches(query, list(names), n=room + len(seen), cutoff=0.75)
    if not close:
        return []
    found: dict[str, SkillHit] = {}
    for skill_id, name, slug, category in session.execute(
        select(Skill.id, Skill.name, Skill.slug, Skill.category)
        .where(active, Skill.name.in_([names[folded] for folded in close]))
        .order_by(Skill.popularity.desc(), Skill.id)
    ).tuples():
        found.setdefault(name.casefold(), SkillHit(skill_id, name, slug, category, name))
    hits = [found[folded] for folded in close if folded in found]
    return [hit for hit in hits if hit.id not in seen][:room]


def unknown_skill(session: Session, query: str, limit: int = SUGGESTIONS) -> str:
    """What to say about a skill nobody could resolve: the closest skills, or that there is none (issue 17).

    The one wording for every command where a skill is typed.
    """
    close = [hit.name for hit in search_skills(session, query, limit)]
    hint = f"did you mean {', '.join(close)}?" if close else "no skill has a close name"
    return f"no skill called {query.strip()!r}; {hint}"


def popular_names(session: Session, limit: int) -> list[str]:
    """The names of the ``limit`` most popular skills (merged ones left out): what a signup form offers
    before anyone types (issue 17)."""
    return list(
        session.scalars(
            select(Skill.name)
            .where(Skill.merged_into.is_(None))
            .order_by(Skill.popularity.desc(), Skill.name)
            .limit(limit)
        )
    )
