"""Sources per skill (issue 16): the query feeds the service watches for a skill it has subscribers for.

    templates (query_templates.yaml) + skill (name, main aliases, GitHub repository)
        -> sources_for (pure): [QuerySource(url, kind, template, reason)]
        -> add_sources: one feed per URL (shared by every skill that gives it) + a skill_sources link
    reconcile(now), each crawl tick: skills with subscribers get their sources and are "wanted" now;
        a query feed none of whose skills was wanted for IDLE_AFTER is paused, and resumed when one is.

A query feed proves nothing by itself: its items are tagged by the matcher like any other feed's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from string import Formatter
from typing import Any, cast
from urllib.parse import quote_plus

import yaml
from sqlalchemy import CursorResult, Update, func, select, update
from sqlalchemy.orm import Session

from digest import PACKAGE_DIR
from digest.errors import InvalidInputError
from digest.ingest import catalog
from digest.ingest.sources import check_feed_url
from digest.models import Skill, SkillAlias, SkillSource, Source, Subscriber, Subscription, SubscriptionSkill
from digest.vocabulary import SOURCE_KINDS

TEMPLATES = Path(__file__).parent / "query_templates.yaml"
REPOSITORIES = PACKAGE_DIR / "data" / "skill-repositories.json"
PLACEHOLDERS = frozenset({"name", "arxiv_query", "phrase", "tag", "repository", "points"})
# The name and at most this many aliases go into a search: more would make arXiv's query long and loose.
MAIN_ALIASES = 2
MIN_ALIAS_LENGTH = 3
IDLE_AFTER = timedelta(days=30)
IDLE_REASON = "paused: no subscriber of its skills for 30 days"
_TAG_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9]*")


@dataclass(frozen=True, slots=True)
class QueryTemplate:
    """A URL format of a public service and how often its answers may be fetched."""

    name: str
    kind: str
    url: str
    every: int
    title: str
    reason: str


@dataclass(frozen=True, slots=True)
class SkillTerms:
    """What a skill's query feeds are made of."""

    skill_id: str
    name: str
    aliases: tuple[str, ...]
    repository: str | None


@dataclass(frozen=True, slots=True)
class QuerySource:
    """A query feed for a skill, as ``digest skills sources`` shows it."""

    url: str
    kind: str
    template: str
    reason: str
    title: str
    every: int

    def as_json(self) -> dict[str, str]:
        """The documented JSON shape."""
        return {"url": self.url, "kind": self.kind, "template": self.template, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class WatchedSource:
    """A query feed watched for a skill, as its page lists it."""

    name: str
    kind: str
    url: str
    state: str
    template: str


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What one ``reconcile`` changed."""

    added: int
    paused: int
    resumed: int


def load_templates(path: Path = TEMPLATES) -> tuple[QueryTemplate, ...]:
    """The templates of a YAML file; ``InvalidInputError`` naming the entry that is wrong."""
    try:
        rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"cannot read query templates {path}: {exc}") from None
    if not isinstance(rows, list):
        raise InvalidInputError(f"{path}: want a list of templates")
    return tuple(_template(row, path) for row in rows)


def _template(row: Any, path: Path) -> QueryTemplate:
    try:
        template = QueryTemplate(**{name: row[name] for name in QueryTemplate.__slots__})
    except (KeyError, TypeError):
        raise InvalidInputError(f"{path}: {row!r} needs {', '.join(QueryTemplate.__slots__)}") from None
    used = {field for text in (template.url, template.title, template.reason) for field in _fields(text)}
    if template.kind not in SOURCE_KINDS or not isinstance(template.every, int) or template.every <= 0:
        raise InvalidInputError(f"{path}: {template.name}: kind one of {SOURCE_KINDS}, every whole seconds")
    if not template.url.startswith("https://") or not used <= PLACEHOLDERS:
        raise InvalidInputError(f"{path}: {template.name}: an https URL using only {sorted(PLACEHOLDERS)}")
    return template


def _fields(text: str) -> set[str]:
    return {field for _, field, _, _ in Formatter().parse(text) if field is not None}


@cache
def bundled_templates() -> tuple[QueryTemplate, ...]:
    """The templates shipped in the package, read once per process."""
    return load_templates()


@cache
def bundled_repositories() -> Mapping[str, str]:
    """Skill key -> GitHub ``owner/repo``, from GitHub Explore topics (tools/taxonomy/repositories.py)."""
    found: dict[str, str] = json.loads(REPOSITORIES.read_text(encoding="utf-8"))
    return found


def skill_terms(session: Session, skill: Skill, repositories: Mapping[str, str]) -> SkillTerms:
    """The name, main aliases (unambiguous, not the name again) and repository of ``skill``."""
    seen = {skill.name.casefold()}
    aliases: list[str] = []
    for text in session.scalars(
        select(SkillAlias.text)
        .where(SkillAlias.skill_id == skill.id, SkillAlias.ambiguous.is_(False))
        .order_by(SkillAlias.id)
    ):
        if len(text) >= MIN_ALIAS_LENGTH and text.casefold() not in seen and len(aliases) < MAIN_ALIASES:
            seen.add(text.casefold())
            aliases.append(text)
    return SkillTerms(skill.id, skill.name, tuple(aliases), repositories.get(skill.key))


def sources_for(
    terms: SkillTerms, templates: Iterable[QueryTemplate], *, points: int | None = None
) -> list[QuerySource]:
    """The query feeds of a skill: one per template whose placeholders the skill fills."""
    values = {
        "name": terms.name,
        "arxiv_query": quote_plus(" OR ".join(f'all:"{term}"' for term in (terms.name, *terms.aliases))),
        "phrase": quote_plus(terms.name if " " not in terms.name else f'"{terms.name}"'),
        "tag": terms.name.lower() if _TAG_LIKE.fullmatch(terms.name) else None,
        "repository": terms.repository,
        "points": f"&points={points}" if points else "",
    }
    found = []
    for template in templates:
        used = _fields(template.url) | _fields(template.title) | _fields(template.reason)
        if any(values[field] is None for field in used):
            continue
        found.append(
            QuerySource(
                url=template.url.format(**values),
                kind=template.kind,
                template=template.name,
                reason=template.reason.format(**values),
                title=template.title.format(**values),
                every=template.every,
            )
        )
    return found


def add_sources(session: Session, skill_id: str, sources: Sequence[QuerySource], now: datetime) -> list[int]:
    """Watch ``sources`` for a skill: a feed per URL not known yet (a known one is shared), and a link.
    Returns the feeds' ids."""
    ids = []
    for query in sources:
        # Looked up as the catalogue stores it, so a template whose URL the check normalises still shares.
        source_id = session.scalar(select(Source.id).where(Source.url == check_feed_url(query.url)))
        if source_id is None:
            source_id = catalog.add_feed(
                session, query.url, query.kind, now, interval=query.every, name=query.title
            ).id
        if session.get(SkillSource, (skill_id, source_id)) is None:
            session.add(
                SkillSource(
                    skill_id=skill_id,
                    source_id=source_id,
                    template=query.template,
                    created_at=now,
                    wanted_at=now,
                )
            )
        ids.append(source_id)
    session.flush()
    return ids


def followed_skills(session: Session) -> set[str]:
    """Skills that an active subscription of an active subscriber follows."""
    return set(
        session.scalars(
            select(SubscriptionSkill.skill_id)
            .join(Subscription, Subscription.id == SubscriptionSkill.subscription_id)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscription.state == "active", Subscriber.state == "active")
            .distinct()
        )
    )


def reconcile(
    session: Session,
    now: datetime,
    templates: Iterable[QueryTemplate],
    repositories: Mapping[str, str],
) -> Reconciled:
    """Bring the query feeds in line with who follows what (see the module docstring)."""
    wanted = followed_skills(session)
    watched = set(session.scalars(select(SkillSource.skill_id).distinct()))
    templates = tuple(templates)
    added = 0
    for skill in session.scalars(select(Skill).where(Skill.id.in_(sorted(wanted - watched)))):
        added += len(
            add_sources(
                session, skill.id, sources_for(skill_terms(session, skill, repositories), templates), now
            )
        )
    if wanted:
        session.execute(
            update(SkillSource).where(SkillSource.skill_id.in_(sorted(wanted))).values(wanted_at=now)
        )
    last_wanted = (
        select(SkillSource.source_id, func.max(SkillSource.wanted_at).label("wanted_at"))
        .group_by(SkillSource.source_id)
        .subquery()
    )
    idle = select(last_wanted.c.source_id).where(last_wanted.c.wanted_at < now - IDLE_AFTER)
    paused = _changed(
        session,
        update(Source)
        .where(Source.id.in_(idle), Source.state == "active")
        .values(state="paused", disabled_reason=IDLE_REASON),
    )
    busy = select(last_wanted.c.source_id).where(last_wanted.c.wanted_at >= now - IDLE_AFTER)
    resumed = _changed(
        session,
        update(Source)
        .where(Source.id.in_(busy), Source.state == "paused", Source.disabled_reason == IDLE_REASON)
        .values(state="active", disabled_reason=None, next_fetch_at=now),
    )
    return Reconciled(added, paused, resumed)


def _changed(session: Session, statement: Update) -> int:
    """Rows an UPDATE changed."""
    return int(cast(CursorResult[Any], session.execute(statement)).rowcount)


def watched_for(session: Session, skill_id: str) -> list[WatchedSource]:
    """The query feeds watched for a skill, news first, as pages show them."""
    return [
        WatchedSource(name, kind, url, state, template)
        for name, kind, url, state, template in session.execute(
            select(Source.name, Source.kind, Source.url, Source.state, SkillSource.template)
            .join(SkillSource, SkillSource.source_id == Source.id)
            .where(SkillSource.skill_id == skill_id)
            .order_by(Source.kind.desc(), Source.id)
        ).tuples()
    ]
