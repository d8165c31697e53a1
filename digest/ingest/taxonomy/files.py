"""Taxonomy files: their records, and reading them (JSON Lines or YAML) with every check a load relies on.

A file is refused whole, in one line naming it, before anything is written: a repeated id or slug, a slug
that is not one URL path segment, a skill that is its own parent, text that is not UTF-8 (issue 14).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from digest import PACKAGE_DIR
from digest.errors import InvalidInputError

DATA = PACKAGE_DIR / "data"
BUNDLED = DATA / "taxonomy.jsonl"
BUNDLED_EXTRA = DATA / "taxonomy-stackoverflow.jsonl"
# One URL path segment: /skills/<slug> must never climb out of /skills (issue 14, finding 12).
SLUG = re.compile(r"[a-z0-9][a-z0-9_+#-]*(?:\.[a-z0-9_+#-]+)*")


@dataclass(frozen=True, slots=True)
class Alias:
    """A surface form in the taxonomy file."""

    text: str
    ambiguous: bool
    case_sensitive: bool
    source: str = "taxonomy"

    def to_json(self) -> dict[str, Any]:
        """The line form of this alias in a taxonomy file."""
        return {"text": self.text, "ambiguous": self.ambiguous, "case_sensitive": self.case_sensitive}


@dataclass(frozen=True, slots=True)
class Entity:
    """A skill entity in the taxonomy file."""

    id: str
    key: str
    name: str
    slug: str
    category: str
    description: str
    aliases: tuple[Alias, ...]
    parents: tuple[str, ...]
    related: tuple[str, ...]
    sources: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The line form of this entity in a taxonomy file, in the field order of the format."""
        return {
            "id": self.id,
            "key": self.key,
            "name": self.name,
            "slug": self.slug,
            "category": self.category,
            "description": self.description,
            "aliases": [alias.to_json() for alias in self.aliases],
            "parents": list(self.parents),
            "related": list(self.related),
            "sources": list(self.sources),
        }


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """A parsed taxonomy file."""

    version: str
    entities: tuple[Entity, ...]


def skill_id_for(key: str) -> str:
    """The stable id of a canonical key: 16 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def read_taxonomy(path: Path, extra: Path | None = None) -> Taxonomy:
    """Parse a taxonomy file, JSON Lines or YAML (and an optional file of extra aliases).

    Raises ``InvalidInputError`` naming the file and what is wrong.
    """
    lines = _yaml_document(path) if path.suffix in (".yaml", ".yml") else _json_lines(path)
    if not lines or "_meta" not in lines[0]:
        raise InvalidInputError(f"{path}: the first line must be the _meta header")
    version = str(lines[0]["_meta"].get("version") or _digest(path))
    extras: dict[str, list[Alias]] = {}
    if extra and extra.exists():
        # Either file changing must reload, so the version names both.
        version = f"{version}+{_digest(extra)[:8]}"
        extras = _extra_aliases(extra)
    entities = tuple(_entity(line, extras.get(str(line.get("id")), ()), path) for line in lines[1:])
    _check_entities(entities, path)
    return Taxonomy(version=version, entities=entities)


def _check_entities(entities: Sequence[Entity], path: Path) -> None:
    """Refuse what would break later: a repeated id or slug (a unique key fails mid-load), a slug that is
    not one URL path segment (``../admin``), a skill that is its own parent (issue 14, findings 9, 12)."""
    ids: set[str] = set()
    slugs: set[str] = set()
    for entity in entities:
        if entity.id in ids:
            raise InvalidInputError(f"{path}: the id {entity.id!r} appears twice (entity {entity.key!r})")
        if not SLUG.fullmatch(entity.slug):
            raise InvalidInputError(
                f"{path}: entity {entity.key!r} has the slug {entity.slug[:60]!r}; a slug is lower-case "
                "letters, digits and - _ + #, with single dots between them"
            )
        if entity.slug in slugs:
            raise InvalidInputError(f"{path}: the slug {entity.slug!r} appears twice (entity {entity.key!r})")
        if entity.id in entity.parents:
            raise InvalidInputError(f"{path}: entity {entity.key!r} names itself as its parent")
        ids.add(entity.id)
        slugs.add(entity.slug)


def read_bundled() -> Taxonomy:
    """The taxonomy shipped with this package."""
    return read_taxonomy(BUNDLED, BUNDLED_EXTRA)


def _yaml_document(path: Path) -> list[dict[str, Any]]:
    """The YAML form: a mapping with ``_meta`` (as in the JSON Lines header) and a list ``entities``."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{path}: not UTF-8 text (byte {exc.start}); is it a taxonomy file?"
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict) or not isinstance(document.get("entities"), list):
        raise InvalidInputError(f"{path}: expected a mapping with _meta and a list of entities")
    entities = [entity for entity in document["entities"] if isinstance(entity, dict)]
    if len(entities) != len(document["entities"]):
        raise InvalidInputError(f"{path}: every entity must be a mapping")
    return [{"_meta": document.get("_meta") or {}}, *entities]


def _json_lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{path}: not UTF-8 text (byte {exc.start}); is it a taxonomy file?"
        ) from None
    return [row for _, row in json_objects(text.splitlines(), str(path))]


def json_objects(lines: Iterable[str], where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank JSON Lines line; ``InvalidInputError`` names ``where:line``."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{where}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InvalidInputError(f"{where}:{number}: each line must be a JSON object")
        yield number, row


def _entity(line: dict[str, Any], extra: Iterable[Alias], path: Path) -> Entity:
    try:
        key = str(line["key"])
        aliases = tuple(
            Alias(str(a["text"]), bool(a.get("ambiguous")), bool(a.get("case_sensitive")))
            for a in line["aliases"]
        )
        entity_id = str(line.get("id") or skill_id_for(key))
        return Entity(
            id=entity_id,
            key=key,
            name=str(line["name"]),
            slug=str(line["slug"]),
            category=str(line.get("category") or "other"),
            description=str(line.get("description") or ""),
            aliases=_dedupe((*aliases, *extra)),
            parents=tuple(line.get("parents") or ()),
            related=tuple(line.get("related") or ()),
            sources=tuple(line.get("sources") or ()),
        )
    except (KeyError, TypeError) as exc:
        raise InvalidInputError(f"{path}: entity {line.get('key', '?')!r} lacks field {exc}") from None


def _extra_aliases(path: Path) -> dict[str, list[Alias]]:
    extras: dict[str, list[Alias]] = {}
    for row in _json_lines(path)[1:]:
        alias = Alias(
            str(row["alias"]),
            bool(row.get("ambiguous")),
            bool(row.get("case_sensitive")),
            source=str(row.get("source") or "extra"),
        )
        extras.setdefault(str(row["entity"]), []).append(alias)
    return extras


def _dedupe(aliases: Iterable[Alias]) -> tuple[Alias, ...]:
    seen: dict[str, Alias] = {}
    for alias in aliases:
        seen.setdefault(alias.text, alias)
    return tuple(seen.values())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
