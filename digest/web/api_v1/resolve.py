"""``POST /api/v1/resolve``: free text to the skills the matcher finds in it, and names to skills.

The text is tagged by the same compiled matcher as every stored item (``Matcher.tag``, as the body of an
item with no title), so a platform sees exactly what an item with this text would be tagged with. Each
name is resolved as the signup form resolves it (id, slug, name or alias, following merges); one that
resolves to nothing answers ``null`` with the suggestions the CLI and the web offer ("did you mean").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from digest.db import transaction
from digest.errors import NotFoundError
from digest.ingest.skills import SUGGESTIONS, resolve_skill, search_skills
from digest.models import Skill
from digest.ops.apikeys import READ, ApiKeyInfo
from digest.records import TagMatch
from digest.web.api_v1.auth import scoped
from digest.web.api_v1.problems import responses
from digest.web.context import Web

# A long article is a few tens of KB; the edge refuses any API body over 64 KiB first.
MAX_TEXT = 60_000
MAX_NAMES = 50


class ResolveIn(BaseModel):
    """Text to tag, and names to resolve; either may be empty."""

    text: str = Field(default="", max_length=MAX_TEXT)
    names: list[Annotated[str, Field(max_length=300)]] = Field(default_factory=list, max_length=MAX_NAMES)


class SkillRef(BaseModel):
    """A skill: its stable id, name and the slug of its page."""

    id: str
    name: str
    slug: str


class EntityOut(BaseModel):
    """A skill the text mentions, as the matcher tags an item with it."""

    skill: SkillRef
    category: str
    matched: list[str] = Field(description="the texts that matched, as written")
    spans: list[list[int]] = Field(description="[start, end) character offsets of each match in the text")
    count: int = Field(description="how many times it is mentioned")
    score: float = Field(description="the tag's score, 0 to 1, as stored on items")


class NameOut(BaseModel):
    """One asked-for name: the skill it names, or null with the closest skills."""

    name: str
    skill: SkillRef | None
    suggestions: list[SkillRef]


class ResolveOut(BaseModel):
    """The skills in the text, strongest first, and each name in the order asked."""

    entities: list[EntityOut]
    names: list[NameOut]


def router(web: Web) -> APIRouter:
    """The route of this module."""
    routes = APIRouter()
    # A default, not an annotation: FastAPI reads string annotations in the module, not this closure.
    read = Depends(scoped(web, READ))

    @routes.post("/resolve", responses=responses())
    def resolve(body: ResolveIn, _: ApiKeyInfo = read) -> ResolveOut:
        """Tag a text with skills and resolve names to skills."""
        with transaction(web.rt.sessions) as session:
            tags = web.rt.matchers.get(session).tag("", body.text) if body.text.strip() else []
            slugs = {tag.skill_id: _slug(session, tag.skill_id) for tag in tags}
            names = [_name(session, name) for name in body.names]
        return ResolveOut(
            entities=[_entity(tag, slugs[tag.skill_id], body.text) for tag in tags], names=names
        )

    return routes


def _slug(session: Session, skill_id: str) -> str:
    skill = session.get(Skill, skill_id)
    return skill.slug if skill is not None else skill_id


def _name(session: Session, name: str) -> NameOut:
    try:
        skill = resolve_skill(session, name) if name.strip() else None
    except NotFoundError:
        skill = None
    if skill is not None:
        return NameOut(
            name=name, skill=SkillRef(id=skill.id, name=skill.name, slug=skill.slug), suggestions=[]
        )
    close = search_skills(session, name, SUGGESTIONS)
    return NameOut(
        name=name,
        skill=None,
        suggestions=[SkillRef(id=hit.id, name=hit.name, slug=hit.slug) for hit in close],
    )


def _entity(tag: TagMatch, slug: str, text: str) -> EntityOut:
    return EntityOut(
        skill=SkillRef(id=tag.skill_id, name=tag.name, slug=slug),
        category=tag.category,
        matched=list(tag.matched),
        spans=[list(span) for span in spans(text, tag.matched)],
        count=tag.count,
        score=tag.score,
    )


def spans(text: str, matched: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where each matched text stands in ``text`` as a whole word, in order of position. The matcher
    reports what matched, not where; a text written in compatibility forms (full-width letters) is read
    by the matcher in NFKC, and its matches are found here as the matcher wrote them."""
    found: set[tuple[int, int]] = set()
    for surface in matched:
        start = text.find(surface)
        while start >= 0:
            end = start + len(surface)
            before = text[start - 1] if start else " "
            after = text[end] if end < len(text) else " "
            if not before.isalnum() and not after.isalnum():
                found.add((start, end))
            start = text.find(surface, start + 1)
    return sorted(found)
