"""Build digest's bundled skill taxonomy from openly licensed public sources.

The sources (GitHub Explore topics, Linguist, devicon, ESCO, O*NET, simple-icons, the CNCF glossary and
Stack Overflow) are described in shared/data/README.md, section 1; the package lists (PyPI ranks, npm
downloads) in section 4. Run::

    python -m tools.taxonomy.build --sources ../shared/data/taxonomy-sources \
        --packages ../shared/data/package-popularity --out digest/data

The pipeline: topics -> curated entities and concepts -> Linguist -> devicon -> ESCO -> O*NET -> simple-icons
brands a package confirms -> CNCF terms -> drop generic entities -> popularity and O*NET commodity drops
(``_weigh``) -> parents of kinds ("Docker Image" under Docker, ``_kind_parents``) -> aliases, ambiguity
and references (``finish``) -> Stack Overflow aliases. Curated data is in ``tools/taxonomy/data``
(``curated``). Two files come out: ``taxonomy.jsonl`` (CC BY 4.0, MIT and CC0
sources only) and ``taxonomy-stackoverflow.jsonl`` (extra aliases from Stack Overflow tag synonyms). Stack
Overflow data is CC BY-SA 4.0, whose ShareAlike term would spread to anything it is mixed into, so it never
enters the main file. The output depends only on the sources, so rebuilding gives byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.ingest.taxonomy import Entity
from tools.taxonomy import modern
from tools.taxonomy.curated import TABLES
from tools.taxonomy.finish import ExtraAlias, common_words, finish_entities, stackoverflow_aliases
from tools.taxonomy.onet import ONET_CATEGORIES, OnetTechnology, add_onet, onet_forms, read_onet
from tools.taxonomy.registry import (
    BUNDLE_SOURCES,
    CNCF,
    CURATED_SOURCE,
    ONET,
    PACKAGES,
    RANK_CURATED,
    RANK_WEAK,
    SIMPLE_ICONS,
    STACKOVERFLOW,
    STACKOVERFLOW_LICENCE,
    Registry,
    Source,
    loose,
)
from tools.taxonomy.sources import (
    add_curated,
    add_devicon,
    add_esco,
    add_linguist,
    add_topics,
)

FORMAT = "digest-taxonomy/1"
# The newest upstream snapshot (linguist @ b45dbe9b2825) dates the bundle instead of the clock, so a
# rebuild of unchanged sources is byte-identical. Bump it when the sources are refreshed.
SNAPSHOT_DATE = "2026.08.20"
BUNDLE_LICENCE = "CC-BY-4.0 AND MIT"


@dataclass(frozen=True)
class BuildResult:
    """Everything a build produces: the main bundle, the separate Stack Overflow aliases and both headers."""

    entities: tuple[Entity, ...]
    stackoverflow: tuple[ExtraAlias, ...]
    meta: dict[str, Any]
    stackoverflow_meta: dict[str, Any]


# --- build and write ------------------------------------------------------------------------------------
def json_line(obj: dict[str, Any]) -> str:
    """One JSON Lines line (without the newline) in the bundle's fixed, compact encoding."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _meta(
    lines: Iterable[str], licence: str, sources: Sequence[Source], by_source: dict[str, Any] | None = None
) -> dict[str, Any]:
    digest = hashlib.sha256("".join(line + "\n" for line in lines).encode("utf-8")).hexdigest()[:8]
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": f"{SNAPSHOT_DATE}-{digest}",
        "licence": licence,
        "sources": [source.to_json() for source in sources],
    }
    if by_source is not None:
        meta["by_source"] = by_source
    return {"_meta": meta}


def _by_source(entities: Sequence[Entity], registry: Registry) -> dict[str, dict[str, int]]:
    """Per source, the skills kept that it names and the entries the build left out or dropped."""
    kept = Counter(source for entity in entities for source in entity.sources)
    return {
        source.name: {"kept": kept[source.name], "dropped": registry.dropped[source.name]}
        for source in BUNDLE_SOURCES
    }


def _kind_parents(registry: Registry) -> None:
    """A skill named another's name and a word for a kind of thing ("penetration testing tool", "Docker
    Image") is a part or kind of that skill: it becomes a parent (``words.yaml``, ``kind_words``). The
    head must be the other skill's name, not an alias ("Esoteric Software" is no Esolang), and no
    language; ``not_kinds`` lists the names that only look like kinds ("SQL Server")."""
    for draft in registry.drafts.values():
        words = draft.name.split()
        if len(words) < 2 or words[-1].lower() not in TABLES.kind_words or draft.name in TABLES.not_kinds:
            continue
        named = " ".join(words[:-1])
        head = registry.drafts.get(registry.resolve(named) or "")
        if head is None or head.key == draft.key or head.category == "language":
            continue
        if loose(head.name) == loose(named):
            draft.parents.add(head.key)


def build(sources: Path, packages: Path | None = None) -> BuildResult:
    """Read every source under ``sources`` (and the package lists in ``packages``) and return the merged
    taxonomy and the Stack Overflow aliases."""
    registry = Registry()
    add_topics(registry, sources)
    add_curated(registry)
    modern.add_concepts(registry, modern.read_concepts(), CURATED_SOURCE.name, RANK_CURATED)
    add_linguist(registry, sources)
    add_devicon(registry, sources)
    add_esco(registry, sources)
    words = common_words(sources)
    add_onet(registry, sources, words)
    facts = modern.read_packages(packages, sources / "stackoverflow-sede" / "Tags.csv")
    everyday = words | TABLES.stopwords
    known = TABLES.homonyms | TABLES.ambiguous_words
    modern.add_simple_icons(registry, sources, facts, SIMPLE_ICONS.name, RANK_WEAK, everyday, known)
    modern.add_cncf(registry, sources, CNCF.name, RANK_WEAK, everyday)
    for key in sorted(TABLES.generic_entities):
        registry.drop(key)
    onet = read_onet(sources)
    _weigh(registry, facts, {tech.name for tech in onet if tech.hot}, _onet_kept(onet))
    for key, aliases in sorted(TABLES.extra_aliases.items()):
        if key in registry.drafts:  # cut-down test sources may lack it
            registry.add_aliases(registry.drafts[key], aliases, trusted=True)
    _kind_parents(registry)
    entities = finish_entities(registry, words)
    extras = stackoverflow_aliases(sources, registry, entities, words)
    return BuildResult(
        entities=entities,
        stackoverflow=extras,
        meta=_meta(
            (json_line(entity.to_json()) for entity in entities),
            BUNDLE_LICENCE,
            BUNDLE_SOURCES,
            _by_source(entities, registry),
        ),
        stackoverflow_meta=_meta(
            (json_line(extra.to_json()) for extra in extras), STACKOVERFLOW_LICENCE, (STACKOVERFLOW,)
        ),
    )


def _onet_kept(onet: Sequence[OnetTechnology]) -> set[str]:
    """O*NET names worth keeping without another source: software classes of our trade ("Clustering
    software") and generic kinds ("Web browser"), as opposed to commodity products ("1CadCam Unigraphics")."""
    kept = set()
    for tech in onet:
        name, full, _ = onet_forms(tech.name)
        words = full.split()
        generic = len(words) > 1 and all(word == word.lower() for word in words[1:])
        if tech.hot or generic or tech.classes.intersection(ONET_CATEGORIES):
            kept.update((name, full))
    return kept


def _weigh(registry: Registry, facts: modern.Packages, hot: set[str], onet_kept: set[str]) -> None:
    """Give each draft its popularity; drop O*NET-only commodity products that no source shows anyone
    uses (issue 15)."""
    for key in sorted(registry.drafts):
        draft = registry.drafts[key]
        names = (draft.name, *draft.aliases)
        popular = modern.popularity(draft, facts, any(name in hot for name in names))
        if popular and (facts.pypi_rank(draft.name) or facts.npm_downloads(draft.name)):
            draft.sources.add(PACKAGES.name)
        if draft.sources == {ONET.name} and not popular and not onet_kept.intersection(names):
            registry.drop(key)
            continue
        draft.popularity = popular


def write(result: BuildResult, out_dir: Path) -> None:
    """Write taxonomy.jsonl and taxonomy-stackoverflow.jsonl into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_lines(out_dir / "taxonomy.jsonl", result.meta, (entity.to_json() for entity in result.entities))
    _write_lines(
        out_dir / "taxonomy-stackoverflow.jsonl",
        result.stackoverflow_meta,
        (extra.to_json() for extra in result.stackoverflow),
    )


def _write_lines(path: Path, header: dict[str, Any], rows: Iterable[dict[str, Any]]) -> None:
    text = "".join(json_line(row) + "\n" for row in (header, *rows))
    path.write_text(text, encoding="utf-8", newline="\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: build from --sources and write to --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sources", type=Path, required=True, help="the taxonomy-sources folder")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .jsonl files")
    parser.add_argument("--packages", type=Path, help="the package-popularity folder (PyPI and npm lists)")
    args = parser.parse_args(argv)
    result = build(args.sources, args.packages)
    write(result, args.out)
    aliases = sum(len(entity.aliases) for entity in result.entities)
    print(
        f"{len(result.entities)} entities, {aliases} aliases, {len(result.stackoverflow)} Stack Overflow "
        f"aliases; version {result.meta['_meta']['version']}"
    )


if __name__ == "__main__":
    main()
