"""The taxonomy in the database: load a file (with redirects for skills it no longer has), count it,
edit it (aliases, merges) and compile it into a ``Matcher``. Loading is idempotent: ids come from canonical
keys, so a reload keeps every tag and subscription.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from digest.errors import InvalidInputError
from digest.ingest.match import AliasSpec, Matcher, SkillInfo
from digest.ingest.match.cache import cached_matcher
from digest.ingest.taxonomy.files import Entity, Taxonomy
from digest.ingest.taxonomy.notices import record as record_notices
from digest.models import Setting, Skill, SkillAlias, SubscriptionSkill, Tag

VERSION_KEY = "taxonomy.version"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load changed."""

    version: str
    entities: int
    aliases: int
    changed: bool
    # Skills the new file no longer has: redirected to their nearest skill, or retired (no aliases left).
    redirected: int = 0
    retired: int = 0


def loaded_version(session: Session) -> str | None:
    """The version of the taxonomy in the database, if any, with the count of admin edits since it loaded.

    Tags record it, so a change of file or an admin's alias or merge makes items eligible for re-tagging,
    and each worker's cached matcher is rebuilt.
    """
    setting = session.get(Setting, VERSION_KEY)
    if setting is None:
        return None
    version, edits = str(setting.value["version"]), int(setting.value.get("edits", 0))
    return f"{version}+edit{edits}" if edits else version


@dataclass(frozen=True, slots=True)
class Stats:
    """``digest taxonomy stats``."""

    version: str | None
    entities: int
    aliases: int
    ambiguous: int
    # Per source, the skills the loaded file keeps from it and those its build dropped (issue 15).
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)


def stats(session: Session) -> Stats:
    """Counts of live (not merged) skills, their aliases, and the ambiguous ones among them."""
    live = select(Skill.id).where(Skill.merged_into.is_(None))
    aliases = select(func.count()).select_from(SkillAlias).where(SkillAlias.skill_id.in_(live))
    setting = session.get(Setting, VERSION_KEY)
    return Stats(
        version=loaded_version(session),
        entities=session.scalar(select(func.count()).select_from(live.subquery())) or 0,
        aliases=session.scalar(aliases) or 0,
        ambiguous=session.scalar(aliases.where(SkillAlias.ambiguous.is_(True))) or 0,
        by_source=dict(setting.value.get("by_source") or {}) if setting is not None else {},
    )


def add_alias(
    session: Session,
    skill: Skill,
    text: str,
    now: datetime,
    *,
    ambiguous: bool = False,
    case_sensitive: bool = False,
) -> None:
    """An admin's alias: kept across taxonomy reloads. Refused if the skill has it already."""
    text = " ".join(text.split())
    if not text or any(char in text for char in "\r\n\x00"):
        raise InvalidInputError("an alias is one line of text")
    if session.scalar(select(SkillAlias.id).where(SkillAlias.skill_id == skill.id, SkillAlias.text == text)):
        raise InvalidInputError(f"{skill.name} already has the alias {text!r}")
    session.add(
        SkillAlias(
            skill_id=skill.id,
            text=text,
            folded=text.casefold(),
            ambiguous=ambiguous,
            case_sensitive=case_sensitive,
            source="admin",
        )
    )
    _count_edit(session, now)


def merge(session: Session, merged: Skill, into: Skill, now: datetime) -> None:
    """Merge one skill into another. The merged id keeps resolving (it redirects), its aliases tag the
    surviving skill, and its tags and subscriptions move over, so no one loses a digest section.
    """
    if merged.id == into.id:
        raise InvalidInputError(f"cannot merge {merged.name} into itself")
    _redirect(session, merged, into, now)
    _count_edit(session, now)


def _redirect(session: Session, merged: Skill, into: Skill, now: datetime) -> None:
    # Its subscribers are told once, in their next digest, before their subscriptions move (issue 15).
    record_notices(session, merged, into, now)
    _move(session, cast(Table, Tag.__table__), "item_id", merged.id, into.id)
    _move(session, cast(Table, SubscriptionSkill.__table__), "subscription_id", merged.id, into.id)
    # Earlier merges into the merged skill now point at the survivor: redirects stay one hop.
    session.execute(update(Skill).where(Skill.merged_into == merged.id).values(merged_into=into.id))
    merged.merged_into = into.id


def _move(session: Session, table: Table, owner: str, old: str, new: str) -> None:
    """Re-point ``table``'s rows from skill ``old`` to ``new``, dropping those whose owner has ``new``."""
    has_new = select(table.c[owner]).where(table.c.skill_id == new)
    session.execute(delete(table).where(table.c.skill_id == old, table.c[owner].in_(has_new)))
    session.execute(update(table).where(table.c.skill_id == old).values(skill_id=new))


def _count_edit(session: Session, now: datetime) -> None:
    setting = session.get(Setting, VERSION_KEY)
    if setting is None:
        raise InvalidInputError("no taxonomy is loaded: run `digest db upgrade`")
    setting.value = {**setting.value, "edits": int(setting.value.get("edits", 0)) + 1}
    setting.updated_at = now


def load(session: Session, taxonomy: Taxonomy, now: datetime, *, replace: bool = False) -> LoadResult:
    """Upsert every entity and replace its file-given aliases. Does nothing for the version already loaded.

    With ``replace`` the file is the whole taxonomy (the bundle): a skill it no longer has redirects to its
    nearest skill or retires. Without, the file adds to what is loaded (an admin's YAML of extra skills).
    """
    setting = session.get(Setting, VERSION_KEY)
    if setting is not None and setting.value.get("version") == taxonomy.version:
        return LoadResult(taxonomy.version, len(taxonomy.entities), 0, changed=False)
    known = {skill.id: skill for skill in session.scalars(select(Skill))}
    for entity in taxonomy.entities:
        _upsert(session, known.get(entity.id), entity, taxonomy.version)
    session.flush()
    ids = [entity.id for entity in taxonomy.entities]
    # Admin-added aliases (source "admin") survive a reload; file-given ones are replaced.
    for chunk in _chunks(ids, 500):
        session.execute(
            delete(SkillAlias).where(SkillAlias.skill_id.in_(chunk), SkillAlias.source != "admin")
        )
    rows = [
        {
            "skill_id": entity.id,
            "text": alias.text,
            "folded": alias.text.casefold(),
            "ambiguous": alias.ambiguous,
            "case_sensitive": alias.case_sensitive,
            "source": alias.source,
        }
        for entity in taxonomy.entities
        for alias in entity.aliases
    ]
    if rows:
        session.execute(insert(SkillAlias), rows)
    kept = set(ids)
    gone = [
        skill
        for skill_id, skill in known.items()
        if replace and skill_id not in kept and not skill.merged_into
    ]
    redirected = _retire(session, gone, taxonomy, now)
    _set_version(session, taxonomy.version, now, taxonomy.meta.get("by_source") or {})
    return LoadResult(
        taxonomy.version,
        len(taxonomy.entities),
        len(rows),
        changed=True,
        redirected=redirected,
        retired=len(gone) - redirected,
    )


def _retire(session: Session, gone: list[Skill], taxonomy: Taxonomy, now: datetime) -> int:
    """Redirect each skill the new file dropped to its nearest skill, or retire it; the count redirected.

    The nearest is the most popular new skill that has the dropped skill's name (or one of its file-given
    aliases) among its aliases, else its first parent that is still there. A redirect moves tags and
    subscriptions like a merge, so subscribers keep their digest section (issue 15). A skill with no
    nearest keeps resolving but loses its file-given aliases, so it tags nothing more. Either way its
    subscribers are told once, in their next digest (``notices``).
    """
    if not gone:
        return 0
    owners: dict[str, list[Entity]] = {}
    for entity in taxonomy.entities:
        for alias in entity.aliases:
            owners.setdefault(alias.text.casefold(), []).append(entity)
    ids = {entity.id for entity in taxonomy.entities}
    redirected = 0
    for skill in gone:
        texts = [skill.name, *session.scalars(select(SkillAlias.text).where(SkillAlias.skill_id == skill.id))]
        candidates = [entity for text in texts for entity in owners.get(text.casefold(), ())]
        nearest = max(candidates, key=lambda entity: entity.popularity, default=None)
        target_id = nearest.id if nearest else next((p for p in skill.parents if p in ids), None)
        target = session.get(Skill, target_id) if target_id else None
        if target is not None:
            _redirect(session, skill, target, now)
            redirected += 1
        else:
            record_notices(session, skill, None, now)
        session.execute(
            delete(SkillAlias).where(SkillAlias.skill_id == skill.id, SkillAlias.source != "admin")
        )
    return redirected


def matcher_from(taxonomy: Taxonomy) -> Matcher:
    """A ``Matcher`` straight from a taxonomy file's records (tests, benchmarks, tools without a database)."""
    skills = {
        entity.id: SkillInfo(entity.name, entity.category, entity.popularity, frozenset(entity.parents))
        for entity in taxonomy.entities
    }
    aliases = (
        AliasSpec(entity.id, alias.text, alias.ambiguous, alias.case_sensitive)
        for entity in taxonomy.entities
        for alias in entity.aliases
    )
    return Matcher(aliases, skills, version=taxonomy.version)


def compile_matcher(session: Session, cache: Path | None = None) -> Matcher:
    """Build a ``Matcher`` from the skills and aliases in the database; with ``cache``, a file that keeps
    the compiled matcher for the next process while these rows stay the same (``match.cache``)."""
    # Plain rows, not ORM objects: twelve thousand of them took a third of ``digest tag``'s start-up.
    skills = {
        skill_id: SkillInfo(name, category, popularity, frozenset(parents or ()))
        for skill_id, name, category, popularity, parents in session.execute(
            select(Skill.id, Skill.name, Skill.category, Skill.popularity, Skill.parents).where(
                Skill.merged_into.is_(None)
            )
        )
    }
    # A merged skill's aliases find the skill it was merged into.
    redirect: dict[str, str] = {
        skill_id: target
        for skill_id, target in session.execute(select(Skill.id, Skill.merged_into))
        if target is not None
    }
    aliases = [
        AliasSpec(redirect.get(skill_id, skill_id), text, ambiguous, case_sensitive)
        for skill_id, text, ambiguous, case_sensitive in session.execute(
            select(SkillAlias.skill_id, SkillAlias.text, SkillAlias.ambiguous, SkillAlias.case_sensitive)
        )
    ]
    version = loaded_version(session) or ""
    if cache is None:
        return Matcher(aliases, skills, version=version)
    return cached_matcher(cache, aliases, skills, version)


def _upsert(session: Session, skill: Skill | None, entity: Entity, version: str) -> None:
    values: dict[str, Any] = {
        "key": entity.key,
        "name": entity.name,
        "slug": entity.slug,
        "category": entity.category,
        "description": entity.description,
        "parents": list(entity.parents),
        "related": list(entity.related),
        "taxonomy_version": version,
        "popularity": entity.popularity,
    }
    if skill is None:
        session.add(Skill(id=entity.id, **values))
        return
    for name, value in values.items():
        setattr(skill, name, value)


def _set_version(session: Session, version: str, now: datetime, by_source: dict[str, Any]) -> None:
    setting = session.get(Setting, VERSION_KEY)
    value = {"version": version, "by_source": by_source}
    if setting is None:
        session.add(Setting(key=VERSION_KEY, value=value, updated_at=now))
    else:
        setting.value = {**setting.value, **value}
        setting.updated_at = now


def _chunks(values: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
