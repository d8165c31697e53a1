"""The curated data of the taxonomy build, read from ``tools/taxonomy/data`` (issue 15, item 4).

- ``curated.yaml``: hand-made entities and corrections to source entities (display name, category,
  aliases, hierarchy), each with a ``why``;
- ``words.yaml``: word lists (homonyms, everyday words, stopwords, generic entities) and corrections
  (wrong aliases, source errata, skipped entries, words for a kind of a skill), each entry with a ``why``;
- ``digest/data/homonyms.txt``: technology names that are also everyday words, shipped with the package
  because the matcher's audit reads it too;
- ``digest/data/english-words.txt``: the lower-case words of SCOWL's American English list (wamerican;
  licence in ``digest/data/licenses/scowl-wamerican-COPYRIGHT``), shipped because the audit reads it too.

``load()`` checks the shape of every entry and raises ``ValueError`` naming the file and the entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data"
SHIPPED = Path(__file__).parent.parent.parent / "digest" / "data"
HOMONYMS = SHIPPED / "homonyms.txt"
DICTIONARY = SHIPPED / "english-words.txt"


@dataclass(frozen=True)
class Curated:
    """A hand-made entity, or corrections to the source entity with the same key."""

    key: str
    why: str
    name: str = ""
    category: str = ""
    aliases: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Tables:
    """Everything ``data/`` holds, in the forms the build uses."""

    curated: tuple[Curated, ...]
    ambiguous_words: frozenset[str]
    case_sensitive_aliases: frozenset[str]
    everyday_words: frozenset[str]
    generic_entities: frozenset[str]
    extra_aliases: dict[str, tuple[str, ...]]
    wrong_aliases: frozenset[tuple[str, str]]
    stopwords: frozenset[str]
    alias_errata: frozenset[tuple[str, str]]
    skipped_entries: frozenset[tuple[str, str]]
    esco_distinct: frozenset[str]
    kind_words: frozenset[str]
    not_kinds: frozenset[str]
    homonyms: frozenset[str]
    dictionary: frozenset[str]


def load(folder: Path = DATA, homonyms: Path = HOMONYMS, dictionary: Path = DICTIONARY) -> Tables:
    """Read and check the curated data."""
    curated_path, words_path = folder / "curated.yaml", folder / "words.yaml"
    rows = _yaml(curated_path)
    if not isinstance(rows, list):
        raise ValueError(f"{curated_path}: expected a list of entities")
    curated = tuple(_curated(curated_path, number, row) for number, row in enumerate(rows, 1))
    tables = _yaml(words_path)
    if not isinstance(tables, dict):
        raise ValueError(f"{words_path}: expected a mapping of tables")

    def entries(name: str, *fields: str) -> list[dict[str, Any]]:
        found = tables.get(name)
        if not isinstance(found, list):
            raise ValueError(f"{words_path}: {name} must be a list")
        for number, entry in enumerate(found, 1):
            missing = [key for key in (*fields, "why") if not isinstance(entry, dict) or not entry.get(key)]
            if missing:
                raise ValueError(f"{words_path}: {name} entry {number} lacks {', '.join(missing)}")
        return found

    def words(name: str, field: str = "words") -> frozenset[str]:
        return frozenset(word for entry in entries(name, field) for word in str(entry[field]).split())

    return Tables(
        curated=curated,
        ambiguous_words=words("ambiguous_words"),
        case_sensitive_aliases=frozenset(str(e["alias"]) for e in entries("case_sensitive_aliases", "alias")),
        everyday_words=words("everyday_words"),
        generic_entities=words("generic_entities", "keys"),
        extra_aliases={
            str(e["key"]): tuple(str(alias) for alias in e["aliases"])
            for e in entries("extra_aliases", "key", "aliases")
        },
        wrong_aliases=frozenset(
            (str(e["key"]), str(e["alias"])) for e in entries("wrong_aliases", "key", "alias")
        ),
        stopwords=words("stopwords"),
        alias_errata=frozenset(
            (str(e["entry"]), str(e["alias"])) for e in entries("alias_errata", "entry", "alias")
        ),
        skipped_entries=frozenset(
            (str(e["source"]), str(e["name"])) for e in entries("skipped_entries", "source", "name")
        ),
        esco_distinct=frozenset(str(e["label"]) for e in entries("esco_distinct", "label")),
        kind_words=words("kind_words"),
        not_kinds=frozenset(str(e["name"]) for e in entries("not_kinds", "name")),
        homonyms=read_word_list(homonyms),
        dictionary=read_word_list(dictionary),
    )


def read_word_list(path: Path) -> frozenset[str]:
    """Words of a text list: any number a line, "#" starts a comment."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(word for line in lines for word in line.split("#", 1)[0].split())


def _curated(path: Path, number: int, row: Any) -> Curated:
    if not isinstance(row, dict) or not row.get("key") or not str(row.get("why") or "").strip():
        raise ValueError(f"{path}: entry {number} needs a key and a why")
    return Curated(
        key=str(row["key"]),
        why=str(row["why"]),
        name=str(row.get("name") or ""),
        category=str(row.get("category") or ""),
        aliases=tuple(str(alias) for alias in row.get("aliases") or ()),
        parents=tuple(str(parent) for parent in row.get("parents") or ()),
        related=tuple(str(other) for other in row.get("related") or ()),
        description=str(row.get("description") or ""),
    )


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not YAML ({str(exc).splitlines()[0]})") from None


TABLES = load()
