"""The builder's vocabulary: the sources it credits, the categories, and the registry of drafts that
sources merge into (by loosely normalised names and trusted aliases)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

CATEGORIES = frozenset(
    {
        "language",
        "framework",
        "library",
        "tool",
        "platform",
        "database",
        "cloud",
        "concept",
        "practice",
        "format",
        "protocol",
        "os",
        "hardware",
        "company",
        "other",
    }
)
MAX_DESCRIPTION = 200
STACKOVERFLOW_LICENCE = "CC-BY-SA-4.0"


@dataclass(frozen=True)
class Source:
    """One upstream source as it is credited in the bundle header and NOTICE.md."""

    name: str
    licence: str
    attribution: str

    def to_json(self) -> dict[str, str]:
        """The header form of this source."""
        return {"name": self.name, "licence": self.licence, "attribution": self.attribution}


GITHUB = Source(
    "github-topics",
    "CC-BY-4.0",
    "Content based on github.com/github/explore used under the CC-BY-4.0 license.",
)
LINGUIST = Source(
    "linguist",
    "MIT",
    "Language data from github-linguist/linguist (lib/linguist/languages.yml), Copyright (c) GitHub, Inc. "
    "Used under the MIT License.",
)
DEVICON = Source(
    "devicon",
    "MIT",
    "Icon metadata from devicons/devicon (devicon.json), Copyright (c) konpa. Used under the MIT License.",
)
ESCO = Source(
    "esco",
    "CC-BY-4.0",
    "This service uses the ESCO classification of the European Commission (ESCO v1.2.0, © European Union), "
    "https://esco.ec.europa.eu. digest has modified the labels: qualifiers were removed, entries were "
    "filtered and merged with other sources.",
)
ONET = Source(
    "onet",
    "CC-BY-4.0",
    "This product includes information from the O*NET 29.2 Database by the U.S. Department of Labor, "
    "Employment and Training Administration (USDOL/ETA). Used under the CC BY 4.0 license. O*NET® is a "
    "trademark of USDOL/ETA. digest has modified all or some of this information. USDOL/ETA has not "
    "approved, endorsed, or tested these modifications.",
)
CURATED_SOURCE = Source(
    "curated",
    "CC-BY-4.0",
    "Hand-curated entries and corrections by the digest project (digest/taxonomy_build.py).",
)
STACKOVERFLOW = Source(
    "stackoverflow",
    STACKOVERFLOW_LICENCE,
    "Tag and tag-synonym data from Stack Overflow (Stack Exchange Data Explorer), "
    "licensed under CC BY-SA 4.0.",
)
SIMPLE_ICONS = Source(
    "simple-icons",
    "CC0-1.0",
    "Brand names and aliases from simple-icons/simple-icons (data/simple-icons.json), CC0 1.0. Brand names "
    "are trademarks of their owners.",
)
CNCF = Source(
    "cncf-glossary",
    "CC-BY-4.0",
    "Definitions adapted from the Cloud Native Glossary (CNCF), licensed under CC BY 4.0.",
)
PACKAGES = Source(
    "packages",
    "facts",
    "PyPI download ranks and npm download counts (facts about packages) confirm names and weigh popularity.",
)
BUNDLE_SOURCES = (GITHUB, LINGUIST, DEVICON, ESCO, ONET, CURATED_SOURCE, SIMPLE_ICONS, CNCF, PACKAGES)
SOURCE_ORDER = {source.name: index for index, source in enumerate(BUNDLE_SOURCES)}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Category hints differ in trust: a hand-set category beats Linguist's type, which beats devicon's tags,
# which beat keywords in a GitHub topic's description, and so on.
RANK_CURATED, RANK_LINGUIST, RANK_DEVICON, RANK_TOPIC, RANK_ESCO, RANK_ONET, RANK_WEAK = range(7)


@dataclass
class Draft:
    """An entity while sources are merged into it; references are resolved only at the end."""

    key: str
    name: str
    category: str
    rank: int
    description: str = ""
    aliases: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)
    related: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    trusted: set[str] = field(default_factory=set)
    popularity: float = 0.0


class Registry:
    """The drafts plus an index from loosely normalised names and trusted aliases to draft keys."""

    def __init__(self) -> None:
        self.drafts: dict[str, Draft] = {}
        self._index: dict[str, str] = {}
        # Per source, the entries the build left out or dropped (``digest taxonomy stats --json``).
        self.dropped: Counter[str] = Counter()

    def find(self, surfaces: Iterable[str]) -> Draft | None:
        """The draft that any of ``surfaces`` already names, trying them in order."""
        for surface in surfaces:
            key = self.resolve(surface)
            if key is not None:
                return self.drafts[key]
        return None

    def resolve(self, surface: str) -> str | None:
        """The key of the draft that ``surface`` names, if any."""
        return self._index.get(loose(surface))

    def create(self, name: str, category: str, rank: int, source: str, key: str = "") -> Draft:
        """Add a draft; a key already taken by a different entity gets the source name appended."""
        key = key or slugify(name)
        if key in self.drafts:
            key = f"{key}-{source}"
        draft = Draft(key, name, category, rank, sources={source})
        self.drafts[key] = draft
        self._remember(key, key)
        self._remember(name, key)
        return draft

    def add_aliases(self, draft: Draft, aliases: Iterable[str], trusted: bool) -> None:
        """Attach aliases; only trusted ones may later pull other sources' entries into this draft."""
        for alias in aliases:
            draft.aliases.append(alias)
            if trusted:
                draft.trusted.add(loose(alias))
                self._remember(alias, draft.key)

    def drop(self, key: str) -> None:
        """Forget a draft and every surface form that names it, so references to it resolve to nothing."""
        draft = self.drafts.pop(key, None)
        if draft is not None:
            self.dropped.update(draft.sources)
        self._index = {surface: owner for surface, owner in self._index.items() if owner != key}

    def reject(self, source: str) -> None:
        """Count an entry of ``source`` that the build leaves out."""
        self.dropped[source] += 1

    def _remember(self, surface: str, key: str) -> None:
        # The first source to claim a surface form keeps it, so GitHub topics win over later sources.
        if loose(surface):
            self._index.setdefault(loose(surface), key)


def loose(text: str) -> str:
    """A matching key: case-folded, with spaces, hyphens, underscores and inner dots removed ("Node.js")."""
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    return folded[:1] + re.sub(r"[\s\-_.]+", "", folded[1:])


def slugify(text: str) -> str:
    """A stable lower-case URL slug ("C#" -> "c-sharp", "Apache Kafka" -> "apache-kafka")."""
    text = text.replace("++", " plus plus ").replace("+", " plus ").replace("#", " sharp ")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "x"


def merge_name(draft: Draft, name: str) -> None:
    # Devicon gives only lower-case slugs ("duckdb"); a later source's "DuckDB" is the better display name.
    if draft.name.islower() and not name.islower() and loose(name) == loose(draft.name):
        draft.name = name


def set_category(draft: Draft, category: str, rank: int) -> None:
    if rank < draft.rank:
        draft.category, draft.rank = category, rank


def initials_fit(full: str, acronym: str) -> bool:
    """Whether an acronym's letters come in order from the initials of a full name."""
    # "Amazon Elastic Compute Cloud EC2" and "Apache Subversion SVN" fit loosely enough; "Google Go" not.
    found = initials(full)
    letters = [char for char in acronym.lower() if char.isalpha()]
    position = 0
    for letter in letters:
        position = found.find(letter, position) + 1
        if position == 0:
            return False
    return bool(letters)


def initials(text: str) -> str:
    """The first letters of a name's words and capitalised parts ("PostgreSQL" -> "psql")."""
    parts = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", text)
    return "".join(part[0].lower() for part in parts)
