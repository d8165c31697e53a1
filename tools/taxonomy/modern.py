"""The modern stack (issue 15): curated concepts, the CNCF glossary, confirmed simple-icons brands, and
popularity from package registries and Stack Overflow.

- ``data/concepts.yaml``: concepts and products of machine learning, data, infrastructure and security that
  no source has (RLHF, LoRA, KV cache, zero trust, SBOM, ...), each with its aliases and a one-line ``why``;
- the CNCF glossary (CC BY 4.0): cloud-native concepts; a one-word title (abstraction, scalability) only
  confirms an entity another source has, because as a new skill it would be an everyday word;
- simple-icons (CC0): brands with aliases. It also lists airlines, shops and games, so a brand is admitted
  only when another source confirms it is technology: an entity already built from GitHub topics,
  Linguist, devicon, ESCO or O*NET, or a PyPI or npm package (or npm scope) of the same name;
- popularity: a prior per entity from Stack Overflow question counts, PyPI rank, npm downloads, a GitHub
  topic and O*NET's "Hot Technology" flag. It orders search results and breaks ties between senses; an
  entity that only O*NET names and nothing shows anyone uses is dropped (a commodity product).

The functions take the builder's ``Registry``.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.taxonomy.registry import Draft, Registry

DATA = Path(__file__).parent / "data"
CONCEPTS = DATA / "concepts.yaml"
CATEGORY_OF_PACKAGE = "library"
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
# Package names that carry the brand with a usual suffix ("sentry-sdk", "dbt-core"), separators removed.
_PACKAGE_SUFFIXES = ("", "sdk", "py", "python", "client", "js", "cli", "ai", "core")


@dataclass(frozen=True)
class Concept:
    """A curated entity: a name the sources lack, its aliases, and why it is in the taxonomy."""

    key: str
    name: str
    category: str
    aliases: tuple[str, ...]
    why: str
    parents: tuple[str, ...] = ()
    # Given a key of a source's entity, the entry renames it ("Next" -> "Next.js").
    renames: bool = False


def read_concepts(path: Path = CONCEPTS) -> tuple[Concept, ...]:
    """The curated concepts; ``ValueError`` names the entry that lacks a field (a ``why`` above all)."""
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list of concepts")
    concepts = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not row.get("name") or not str(row.get("why") or "").strip():
            raise ValueError(f"{path}: entry {number} needs a name and a why")
        name = str(row["name"])
        concepts.append(
            Concept(
                key=str(row.get("key") or _slug(name)),
                name=name,
                category=str(row.get("category") or "concept"),
                aliases=tuple(str(alias) for alias in row.get("aliases") or ()),
                why=str(row["why"]),
                parents=tuple(str(parent) for parent in row.get("parents") or ()),
                renames="key" in row,
            )
        )
    keys = [concept.key for concept in concepts]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"{path}: keys used twice: {', '.join(duplicates)}")
    return tuple(concepts)


def add_concepts(registry: Registry, concepts: Iterable[Concept], source: str, rank: int) -> None:
    """Add each curated concept, or give an entity that exists already its aliases."""
    for concept in concepts:
        draft = registry.drafts.get(concept.key) or registry.find([concept.name, *concept.aliases])
        if draft is None:
            draft = registry.create(concept.name, concept.category, rank, source, key=concept.key)
        elif concept.renames and draft.key == concept.key and not _same(draft.name, concept.name):
            # Our display name for a source's entity ("Next" from devicon's "nextjs" is Next.js).
            registry.add_aliases(draft, [draft.name], trusted=True)
            draft.name = concept.name
        draft.sources.add(source)
        registry.add_aliases(draft, [concept.name, *concept.aliases], trusted=True)
        draft.parents.update(concept.parents)


def add_cncf(registry: Registry, root: Path, source: str, rank: int, words: frozenset[str]) -> None:
    """Cloud-native concepts from the CNCF glossary."""
    folder = root / "cncf-glossary"
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.md")):
        match = _FRONT_MATTER.match(path.read_text(encoding="utf-8"))
        meta = yaml.safe_load(match.group(1)) if match else None
        if not isinstance(meta, dict) or not meta.get("title"):
            continue
        title = str(meta["title"]).strip()
        name, paren = _split_parenthetical(title)
        forms = [name, paren] if paren else [name]
        draft = registry.find(forms)
        if draft is None:
            if " " not in name:
                registry.reject(source)  # "Scalability", "Nodes" as skills would tag every other sentence
                continue
            draft = registry.create(_sentence_case(name), "concept", rank, source)
        draft.sources.add(source)
        registry.add_aliases(draft, forms, trusted=False)


@dataclass(frozen=True)
class Packages:
    """Registry facts: PyPI rank and npm monthly downloads by loosely normalised name, and npm scopes."""

    pypi: dict[str, int]
    npm: dict[str, int]
    scopes: dict[str, int]
    tags: dict[str, int]

    def pypi_rank(self, name: str) -> int | None:
        return _first(self.pypi, name, min)

    def npm_downloads(self, name: str) -> int | None:
        found = _first(self.npm, name, max)
        scope = self.scopes.get(_package_key(name))
        if scope is not None and (found is None or scope > found):
            return scope
        return found

    def questions(self, name: str) -> int:
        return self.tags.get(_package_key(name), 0)


def read_packages(folder: Path | None, tags_csv: Path) -> Packages:
    """Read pypi-top.tsv and npm-top.tsv (when ``folder`` has them) and Stack Overflow's Tags.csv."""
    pypi: dict[str, int] = {}
    npm: dict[str, int] = {}
    scopes: dict[str, int] = {}
    if folder is not None and (folder / "pypi-top.tsv").exists():
        for row in _tsv(folder / "pypi-top.tsv"):
            pypi.setdefault(_package_key(row["name"]), int(row["rank"]))
        for row in _tsv(folder / "npm-top.tsv"):
            downloads, name = int(row["downloads_a_month"]), row["name"]
            if name.startswith("@"):
                scope = _package_key(name[1:].split("/", 1)[0])
                scopes[scope] = max(scopes.get(scope, 0), downloads)
            else:
                key = _package_key(name)
                npm[key] = max(npm.get(key, 0), downloads)
    tags: dict[str, int] = {}
    if tags_csv.exists():
        with tags_csv.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                key = _package_key(row["TagName"])
                tags[key] = max(tags.get(key, 0), int(row["Count"] or 0))
    return Packages(pypi, npm, scopes, tags)


def add_simple_icons(
    registry: Registry,
    root: Path,
    packages: Packages,
    source: str,
    rank: int,
    words: frozenset[str],
    homonyms: frozenset[str],
) -> None:
    """Brands that another source confirms as technology, with their aliases.

    A package or tag named like an everyday word ("task", "box", "threads") confirms nothing: the word is
    taken by many packages, and as a skill it would tag ordinary prose. A known homonym of a technology
    (digest/data/homonyms.txt: Ray, Snowflake, Modal) is admitted, and its aliases need evidence.
    """
    path = root / "simple-icons" / "simple-icons.json"
    if not path.exists():
        return
    for icon in sorted(json.loads(path.read_text(encoding="utf-8")), key=lambda item: str(item["title"])):
        title = str(icon["title"])
        aliases = list(_icon_aliases(icon))
        draft = registry.find([title, _without_vendor(title)])
        if draft is None:
            if everyday(title, words) and title.lower() not in homonyms:
                registry.reject(source)
                continue
            # A Stack Overflow tag alone does not confirm: consumer brands have tags for their APIs (Nokia,
            # Epson, Visa); a package named after the brand does.
            confirmed = packages.pypi_rank(title) is not None or packages.npm_downloads(title) is not None
            if not confirmed:
                registry.reject(source)
                continue
            category = "tool" if packages.questions(title) else CATEGORY_OF_PACKAGE
            draft = registry.create(title, category, rank, source)
        draft.sources.add(source)
        # A brand that only resembles an entity ("Make" the automation service, Makefile the language)
        # lends it no aliases.
        if loose_name(draft.name) == loose_name(title):
            registry.add_aliases(draft, [title, *aliases], trusted=False)


def popularity(draft: Draft, packages: Packages, hot: bool) -> float:
    """A prior in [0, 1]: the strongest sign that people use the entity, plus a little for each other sign.

    Stack Overflow questions and npm downloads count on a log scale; a PyPI rank counts by how near the top
    it is; a GitHub topic or an O*NET "Hot Technology" flag is a fixed vote.
    """
    names = [draft.name, draft.key, *draft.aliases]
    signs = []
    questions = max((packages.questions(name) for name in names), default=0)
    if questions:
        signs.append(min(1.0, math.log10(questions + 1) / 6.5))
    ranks = [rank for name in names if (rank := packages.pypi_rank(name)) is not None]
    if ranks:
        signs.append(1.0 - min(ranks) / 16_000)
    downloads = [count for name in names if (count := packages.npm_downloads(name)) is not None]
    if downloads:
        signs.append(min(1.0, math.log10(max(downloads)) / 9.5))
    if "github-topics" in draft.sources:
        signs.append(0.5)
    if hot:
        signs.append(0.6)
    if "curated" in draft.sources:
        signs.append(0.5)
    if not signs:
        return 0.0
    signs.sort(reverse=True)
    return round(min(1.0, signs[0] + 0.05 * (len(signs) - 1)), 3)


def everyday(name: str, words: frozenset[str]) -> bool:
    """Whether a one-word name is an everyday word, in the singular or the plural ("Nodes", "Task")."""
    folded = name.lower()
    return " " not in folded and bool({folded, folded.removesuffix("s"), folded + "s"} & words)


def loose_name(text: str) -> str:
    """A name without case and separators, to tell whether two sources name the same thing."""
    return re.sub(r"[\s\-_.]+", "", text.casefold())


def _same(one: str, other: str) -> bool:
    return loose_name(one) == loose_name(other)


def _without_vendor(title: str) -> str:
    """ "Google BigQuery" -> "BigQuery": simple-icons names brands with their vendor, other sources do not."""
    vendor, _, rest = title.partition(" ")
    return rest if vendor in ("Google", "Amazon", "Microsoft", "Apache", "AWS", "Azure") and rest else title


def _icon_aliases(icon: dict[str, Any]) -> Iterator[str]:
    aliases = icon.get("aliases") or {}
    for aka in aliases.get("aka") or ():
        yield str(aka)
    for dup in aliases.get("dup") or ():
        if isinstance(dup, dict) and dup.get("title"):
            yield str(dup["title"])


def _first(table: dict[str, int], name: str, pick: Any) -> int | None:
    key = _package_key(name)
    if not key:
        return None
    found = [table[key + suffix] for suffix in _PACKAGE_SUFFIXES if key + suffix in table]
    return pick(found) if found else None


def _package_key(name: str) -> str:
    """PyPI's normalisation (PEP 503) without separators: "Scikit_Learn" and "scikit-learn" are one."""
    return re.sub(r"[\s\-_.]+", "", name.casefold())


def _tsv(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)


def _split_parenthetical(title: str) -> tuple[str, str]:
    match = re.match(r"^(?P<base>.+?)\s*\((?P<paren>[^()]+)\)$", title)
    return (match["base"], match["paren"]) if match else (title, "")


def _sentence_case(name: str) -> str:
    """ "Zero Trust Architecture" -> "Zero trust architecture"; acronyms keep their capitals."""
    words = name.split()
    return " ".join([words[0], *(w if w.isupper() else w.lower() for w in words[1:])])


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
