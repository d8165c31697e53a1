"""GitHub Explore topics, the curated entries, Linguist, devicon and ESCO merged into the registry."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from tools.taxonomy.curated import TABLES
from tools.taxonomy.registry import (
    CURATED_SOURCE,
    DEVICON,
    ESCO,
    GITHUB,
    LINGUIST,
    MAX_DESCRIPTION,
    RANK_CURATED,
    RANK_DEVICON,
    RANK_ESCO,
    RANK_LINGUIST,
    RANK_TOPIC,
    RANK_WEAK,
    Draft,
    Registry,
    _words,
    initials_fit,
    loose,
    merge_name,
    set_category,
    slugify,
)

# Last words that make a GitHub topic alias a listing rather than a name ("deep-learning-tutorial").
_TOPIC_ALIAS_NOISE = _words(
    """
    tutorial tutorials example examples resources papers library libraries awesome project projects
    algorithms application applications app apps demo demos sample samples boilerplate starter template
    templates guide course courses book books cheatsheet interview list experiments models
    """
)
_TOPIC_HINTS: tuple[tuple[str, str], ...] = (
    ("programming language", "language"),
    ("scripting language", "language"),
    ("query language", "language"),
    ("markup language", "language"),
    ("operating system", "os"),
    ("linux distribution", "os"),
    ("database", "database"),
    ("file format", "format"),
    ("data format", "format"),
    ("protocol", "protocol"),
    ("cloud", "cloud"),
    ("framework", "framework"),
    ("library", "library"),
    ("company", "company"),
    ("corporation", "company"),
    ("microcontroller", "hardware"),
    ("hardware", "hardware"),
    ("platform", "platform"),
)
_DEVICON_HINTS: tuple[tuple[str, str], ...] = (
    ("database", "database"),
    ("os", "os"),
    ("operating-system", "os"),
    ("framework", "framework"),
    ("library", "library"),
    ("language", "language"),
    ("cloud", "cloud"),
    ("platform", "platform"),
    ("hardware", "hardware"),
)
# Devicon tags that describe a kind of thing rather than a related technology.
_DEVICON_GENERIC_TAGS = _words(
    """
    open-source programming language framework library tool web software development platform api data
    editor ide server cloud hosting testing package manager build design app application mobile database
    """
)
_ESCO_QUALIFIERS: dict[str, str] = {
    "computer programming": "language",
    "tools for software configuration management": "tool",
    "digital game creation systems": "tool",
    "penetration testing tool": "tool",
    "learning management systems": "platform",
    "graphics editor software": "tool",
    "integrated development environment software": "tool",
    "mobile operating systems": "os",
    "database management systems": "database",
}
_ESCO_BROADER: tuple[tuple[str, str], ...] = (
    ("computer programming", "language"),
    ("query languages", "language"),
    ("style sheet languages", "language"),
    ("database management systems", "database"),
    ("mobile operating systems", "os"),
    ("cloud technologies", "cloud"),
    ("software frameworks", "framework"),
    ("project management methodologies", "practice"),
)
# Lower-case ESCO concepts are kept only under these (tech) broader groups.
_ESCO_TECH_GROUPS = (
    "software and applications development and analysis",
    "computer programming",
    "database and network design and administration",
)
_ESCO_GENERIC_WORDS = frozenset(
    {"ICT", "policy", "policies", "standards", "market", "methodologies", "software"}
)

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_PARENTHETICAL = re.compile(r"^(?P<base>.+?)\s*\((?P<paren>[^()]+)\)$")


# --- GitHub Explore topics ------------------------------------------------------------------------------
def _read_topics(root: Path) -> Iterator[dict[str, Any]]:
    for path in sorted((root / "github-explore-topics" / "topics").glob("*/index.md")):
        match = _FRONT_MATTER.match(path.read_text(encoding="utf-8"))
        if match:
            yield yaml.safe_load(match.group(1))


def _split_list(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _topic_alias(slug: str) -> str | None:
    words = slug.split("-")
    if len(words) > 1 and words[-1] in _TOPIC_ALIAS_NOISE:
        return None
    # "python-3-6" is how a slug spells "python 3.6".
    return re.sub(r"(?<=\d) (?=\d)", ".", " ".join(words))


def _topic_category(meta: dict[str, Any]) -> str:
    text = str(meta.get("short_description") or "").lower()
    for needle, category in _TOPIC_HINTS:
        if needle in text:
            return category
    # A topic with a home page is a product; one without is an idea ("machine learning").
    return "tool" if meta.get("url") or meta.get("github_url") else "concept"


def _split_parenthetical(label: str) -> tuple[str, str]:
    match = _PARENTHETICAL.match(label.strip())
    return (match["base"], match["paren"]) if match else (label.strip(), "")


def add_topics(registry: Registry, root: Path) -> None:
    for meta in _read_topics(root):
        name, paren = _split_parenthetical(str(meta["display_name"]))
        draft = registry.create(name, _topic_category(meta), RANK_TOPIC, GITHUB.name, key=str(meta["topic"]))
        draft.description = short_description(str(meta.get("short_description") or ""))
        extra = [paren] if paren and paren.lower() != "disambiguation" else []
        aliases = [alias for alias in map(_topic_alias, _split_list(meta.get("aliases"))) if alias]
        registry.add_aliases(draft, [*extra, *aliases], trusted=True)
        draft.related.update(_split_list(meta.get("related")))


def short_description(text: str) -> str:
    """Collapse whitespace and cut at a word boundary so the text fits in MAX_DESCRIPTION characters."""
    text = " ".join(text.split())
    if len(text) <= MAX_DESCRIPTION:
        return text
    return text[: MAX_DESCRIPTION - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


# --- ours -----------------------------------------------------------------------------------------------
def add_curated(registry: Registry) -> None:
    for item in TABLES.curated:
        draft = registry.drafts.get(item.key)
        if draft is None:
            draft = registry.create(item.name, item.category, RANK_CURATED, CURATED_SOURCE.name, key=item.key)
        elif item.name and item.name != draft.name:
            # Our display name wins; the source's spelling stays findable as an alias.
            registry.add_aliases(draft, [draft.name], trusted=True)
            draft.name = item.name
        draft.sources.add(CURATED_SOURCE.name)
        draft.category, draft.rank = item.category or draft.category, RANK_CURATED
        draft.description = draft.description or item.description
        registry.add_aliases(draft, [item.name, *item.aliases], trusted=True)
        draft.parents.update(item.parents)
        draft.related.update(item.related)


# --- Linguist -------------------------------------------------------------------------------------------
def add_linguist(registry: Registry, root: Path) -> None:
    languages = yaml.safe_load((root / "github-linguist" / "languages.yml").read_text(encoding="utf-8"))
    for name in sorted(languages):
        info = languages[name]
        programming = info.get("type") == "programming"
        draft = registry.find([name])
        if draft is None:
            # Variants such as "Julia REPL" and data or markup formats only enrich entities we already have.
            if not programming or info.get("group"):
                continue
            draft = registry.create(name, "language", RANK_LINGUIST, LINGUIST.name)
        merge_name(draft, name)
        draft.sources.add(LINGUIST.name)
        set_category(
            draft, "language" if programming else "format", RANK_LINGUIST if programming else RANK_WEAK
        )
        aliases = [
            str(alias) for alias in info.get("aliases") or [] if (name, str(alias)) not in TABLES.alias_errata
        ]
        registry.add_aliases(draft, [name, *aliases], trusted=True)
        if info.get("group"):
            draft.parents.add(str(info["group"]))


# --- devicon --------------------------------------------------------------------------------------------
def add_devicon(registry: Registry, root: Path) -> None:
    items = json.loads((root / "devicon" / "devicon.json").read_text(encoding="utf-8"))
    for item in sorted(items, key=lambda entry: str(entry["name"])):
        slug = str(item["name"])
        if (DEVICON.name, slug) in TABLES.skipped_entries:
            continue
        alts = [str(alt) for alt in item.get("altnames") or [] if (slug, str(alt)) not in TABLES.alias_errata]
        tags = [str(tag) for tag in item.get("tags") or []]
        draft = registry.find([slug, *alts])
        display = _devicon_display(slug, alts)
        if draft is None:
            draft = registry.create(display, _devicon_category(tags), RANK_DEVICON, DEVICON.name)
        merge_name(draft, display)
        draft.sources.add(DEVICON.name)
        set_category(draft, _devicon_category(tags), RANK_DEVICON)
        registry.add_aliases(draft, [alias for alias in [slug, *alts] if _useful_devicon_alias(alias)], True)
        draft.related.update(tag for tag in tags if tag.lower() not in _DEVICON_GENERIC_TAGS)


def _devicon_display(slug: str, alts: Sequence[str]) -> str:
    # An altname that only adds spacing or capitals to the slug ("Cloud Run") is the product's real name.
    spelled = [alt for alt in alts if loose(alt) == loose(slug) and not alt.islower()]
    return spelled[0] if spelled else slug


def _devicon_category(tags: Sequence[str]) -> str:
    lowered = {tag.lower() for tag in tags}
    return next((category for tag, category in _DEVICON_HINTS if tag in lowered), "tool")


def _useful_devicon_alias(alias: str) -> bool:
    # Long run-together slugs ("remotedictionaryserver") are icon search keys, never written in prose.
    return not (alias.isalnum() and alias.islower() and len(alias) > 12)


# --- ESCO -----------------------------------------------------------------------------------------------
def add_esco(registry: Registry, root: Path) -> None:
    path = root / "esco-v1.2.0" / "digitalSkillsCollection_en.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: row["conceptUri"])
    by_uri: dict[str, Draft] = {}
    for row in rows:
        draft = _add_esco_concept(registry, row)
        if draft is not None:
            by_uri[row["conceptUri"]] = draft
    for row in rows:
        if row["conceptUri"] in by_uri:
            broader = (by_uri.get(uri.strip()) for uri in row["broaderConceptUri"].split("|"))
            by_uri[row["conceptUri"]].parents.update(parent.key for parent in broader if parent)


def _add_esco_concept(registry: Registry, row: dict[str, str]) -> Draft | None:
    label = " ".join(row["preferredLabel"].split())
    if row["skillType"] != "knowledge" or (ESCO.name, label) in TABLES.skipped_entries:
        return None
    name, qualifier = _split_parenthetical(label)
    category = _ESCO_QUALIFIERS.get(qualifier) or _esco_category(row, name)
    draft = None if label in TABLES.esco_distinct else registry.find([name])
    if draft is not None and qualifier and category == "language" and draft.category != "language":
        draft = None  # "ML (computer programming)" is not machine learning
    if draft is None:
        if not _esco_worth_adding(row, name, qualifier):
            return None
        draft = registry.create(name, category, RANK_ESCO, ESCO.name, key=slugify(label))
    merge_name(draft, name)
    draft.sources.add(ESCO.name)
    set_category(draft, category, RANK_ESCO)
    draft.description = draft.description or short_description(row["description"])
    # Most alt labels are one a line, but some lines hold several joined by " | ".
    alt_labels = [
        " ".join(alt.split()) for line in row["altLabels"].splitlines() for alt in line.split(" | ")
    ]
    fitting = [alt for alt in alt_labels if 0 < len(alt.split()) <= 5 and _esco_alt_fits(name, alt)]
    registry.add_aliases(draft, [name, *fitting], False)
    return draft


def _esco_alt_fits(name: str, alt: str) -> bool:
    # A group concept ("computer programming") lists its members ("DIBOL", "Seed7") as alt labels; only
    # rephrasings and its own acronym ("machine learning" -> "ML") are aliases of it.
    if name != name.lower():
        return True
    return alt == alt.lower() or (alt.isupper() and initials_fit(name, alt))


def _esco_category(row: dict[str, str], name: str) -> str:
    broader = row["broaderConceptPT"]
    hint = next((category for needle, category in _ESCO_BROADER if needle in broader), None)
    return hint or ("tool" if name != name.lower() else "concept")


def _esco_worth_adding(row: dict[str, str], name: str, qualifier: str) -> bool:
    words = name.split()
    if qualifier or _ESCO_GENERIC_WORDS.intersection(words) or len(words) > 6:
        return bool(qualifier) and not _ESCO_GENERIC_WORDS.intersection(words)
    if name != name.lower():
        return True  # a proper noun or acronym: a product, language or method
    return len(words) <= 3 and any(group in row["broaderConceptPT"] for group in _ESCO_TECH_GROUPS)
