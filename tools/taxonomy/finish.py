"""Finishing the drafts into entities: aliases, their ambiguity and case, references; and the Stack
Overflow aliases kept in their own file."""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from digest.ingest.taxonomy import Alias, Entity, Senses, is_dictionary_word, read_senses, skill_id_for
from tools.taxonomy.curated import TABLES
from tools.taxonomy.registry import (
    CATEGORIES,
    SOURCE_ORDER,
    STACKOVERFLOW,
    Draft,
    Registry,
    initials,
    loose,
    slugify,
)

# Stack Overflow synonyms of tags with fewer questions than this are too obscure to trust.
MIN_SO_QUESTIONS = 100
# Lower-case words used in at least this many O*NET occupation descriptions count as everyday English.
MIN_WORD_OCCUPATIONS = 2
# Entities only these sources give are brands and packages: a dictionary word among their names needs
# evidence ("Magic", "Loops"), whatever O*NET's word list says.
_BRAND_SOURCES = frozenset({"simple-icons", "packages"})
_SO_VERSION = re.compile(r"-\d+(\.[0-9x]+)*$")
# Sense rules of dictionary-word aliases (issue 15, item 3), read by the audit too.
SENSES: Senses = read_senses()
SENSE_WORDS = TABLES.dictionary | TABLES.homonyms


@dataclass(frozen=True)
class ExtraAlias:
    """One Stack Overflow-derived alias, kept apart because it is CC BY-SA 4.0."""

    entity: str
    alias: str

    def to_json(self) -> dict[str, str]:
        """The line form of this alias."""
        return {"entity": self.entity, "alias": self.alias, "source": STACKOVERFLOW.name}


# --- finishing: aliases, ambiguity, references ----------------------------------------------------------
def common_words(root: Path) -> frozenset[str]:
    """Everyday English words: lower-case words used in several O*NET occupation descriptions.

    Job descriptions are plain English about every trade, so words they share ("spring", "make", "ray")
    are ones an alias can't claim without context.
    """
    counts: Counter[str] = Counter()
    path = root / "onet-29.2" / "Occupation Data.txt"
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            counts.update(set(re.findall(r"\b[a-z]{2,}\b", row["Description"])))
    found = {word for word, count in counts.items() if count >= MIN_WORD_OCCUPATIONS}
    return frozenset(found | TABLES.everyday_words)


def _cased(alias: str, draft: Draft) -> str:
    """Restore acronym capitals that slugs lost ("gcp" -> "GCP", "ml" -> "ML")."""
    if not (alias.islower() and alias.isalnum() and len(alias) <= 5):
        return alias
    words = set(re.findall(r"[A-Za-z0-9]+", f"{draft.name} {draft.description}"))
    return alias.upper() if alias == initials(draft.name) or alias.upper() in words else alias


def _keeps(alias: str, category: str) -> bool:
    folded = alias.lower()
    if folded in TABLES.stopwords or not re.search(r"[^\W\d_]", alias) or len(alias) > 80:
        return False
    if len(alias) == 1:
        return alias.isupper() and category == "language"  # R, C, D
    # Two lower-case letters ("py", "ml") match too much prose to be worth it.
    return len(alias) > 2 or alias != folded or not alias.isalpha()


def _surface_forms(draft: Draft, owners: dict[str, set[str]], words: frozenset[str]) -> list[str]:
    """The name, then each distinct alias worth keeping, in the casing that shows the most capitals."""
    chosen = {draft.name.lower(): draft.name}
    for raw in draft.aliases:
        alias = _cased(" ".join(raw.split()), draft)
        if not _keeps(alias, draft.category) or _claimed(alias, draft, owners) or _wrong(alias, draft, words):
            continue
        best = chosen.setdefault(alias.lower(), alias)
        if best != draft.name and sum(map(str.isupper, alias)) > sum(map(str.isupper, best)):
            chosen[alias.lower()] = alias
    return list(chosen.values())


def _wrong(alias: str, draft: Draft, words: frozenset[str]) -> bool:
    # A lower-case everyday word is no name for a thing called something else: GitHub topics give TWRP the
    # alias "software", Bukkit "paper" and Makefile "make", and prose uses those words all the time.
    if (draft.key, alias.lower()) in TABLES.wrong_aliases:
        return True
    return alias.islower() and alias in words and loose(alias) != loose(draft.name)


def _claimed(alias: str, draft: Draft, owners: dict[str, set[str]]) -> bool:
    # An untrusted alias that another entity names or trusts belongs to that entity: ESCO's "Mocha" for
    # JavaScript is the test runner, its "AngularJS" for computer programming is Angular. Trusted aliases
    # that clash are kept and marked ambiguous instead.
    claimants = owners.get(loose(alias), set())
    return bool(claimants) and draft.key not in claimants and loose(alias) not in draft.trusted


def _word_ambiguous(alias: str, words: frozenset[str]) -> bool:
    # Punctuation the matcher folds away does not make a word a name: "Act!" is read as "act".
    folded = alias.lower().rstrip("!?.")
    return (
        len(alias) <= 2
        or folded in TABLES.ambiguous_words
        or folded in TABLES.homonyms
        or (" " not in folded and folded in words)
    )


def _aliases(
    forms: Sequence[str], shared: set[str], words: frozenset[str], draft: Draft
) -> tuple[Alias, ...]:
    result: list[Alias] = []
    for form in forms:
        homonym = _word_ambiguous(form, words)
        # An acronym spelling a word ("FIRST", "MEAN", "CALL") is only the acronym in capitals; so is a
        # name we list as case-sensitive ("Apple", not "an apple"). Neither needs more context than that.
        acronym = form.isalpha() and form.isupper() and len(form) > 1 and form.lower() in words
        if acronym or form in TABLES.case_sensitive_aliases:
            result.append(Alias(form, form.lower() in shared, True))
            continue
        # Case only rescues a homonym when it is written with capitals: "Go" the language, "go" the verb.
        alias = Alias(form, homonym or form.lower() in shared, homonym and form != form.lower())
        result += _with_sense(alias, draft, form == draft.name)
    return tuple(result)


def _with_sense(alias: Alias, draft: Draft, named: bool) -> list[Alias]:
    """A dictionary word the flags above left open gets the rule ``digest/data/senses.yaml`` gives it."""
    if alias.ambiguous or alias.case_sensitive or not is_dictionary_word(alias.text, SENSE_WORDS):
        return [alias]
    found = SENSES.rule_for(alias.text, draft.key, draft.category)
    if found is None:
        raise ValueError(f"senses.yaml: no rule fits {alias.text!r} of {draft.key!r}")
    text, lower = alias.text, alias.text.lower()
    if found.rule == "never" and named:
        raise ValueError(f"senses.yaml: {text!r} is the name of {draft.key!r}; it cannot be dropped")
    if found.rule == "never":
        return []
    if found.rule == "exact":
        return [Alias(text, False, True)]
    if found.rule == "cased" and text != lower:
        # The lower-case twin keeps "a python library" while "a python in the garden" stays out.
        return [Alias(text, False, True), Alias(lower, True, True)]
    if found.rule in ("cased", "evidence"):
        return [Alias(text, True, text != lower)]
    return [alias]


def _references(
    registry: Registry, draft: Draft, refs: Iterable[str], exclude: Iterable[str]
) -> tuple[str, ...]:
    keys = {registry.resolve(ref) for ref in refs} - {None, draft.key, *exclude}
    return tuple(sorted(skill_id_for(key) for key in keys if key is not None))


def finish_entities(registry: Registry, words: frozenset[str]) -> tuple[Entity, ...]:
    owners: dict[str, set[str]] = {}
    for draft in registry.drafts.values():
        for surface in {loose(draft.name), *draft.trusted}:
            owners.setdefault(surface, set()).add(draft.key)
    forms = {key: _surface_forms(draft, owners, words) for key, draft in registry.drafts.items()}
    counts = Counter(form.lower() for surface in forms.values() for form in surface)
    shared = {form for form, count in counts.items() if count > 1}
    entities = []
    for key in sorted(registry.drafts):
        draft = registry.drafts[key]
        brand = draft.sources <= _BRAND_SOURCES
        parents = _references(registry, draft, draft.parents, ())
        parent_keys = {registry.resolve(ref) or "" for ref in draft.parents}
        entities.append(
            Entity(
                id=skill_id_for(key),
                key=key,
                name=draft.name,
                slug=slugify(key),
                category=draft.category if draft.category in CATEGORIES else "other",
                description=draft.description,
                aliases=_aliases(forms[key], shared, words | TABLES.dictionary if brand else words, draft),
                parents=parents,
                related=_references(registry, draft, draft.related, parent_keys),
                sources=tuple(sorted(draft.sources, key=SOURCE_ORDER.__getitem__)),
                popularity=draft.popularity,
            )
        )
    return tuple(entities)


# --- Stack Overflow (CC BY-SA 4.0: kept out of the main bundle) -----------------------------------------
def stackoverflow_aliases(
    root: Path, registry: Registry, entities: Sequence[Entity], words: frozenset[str]
) -> tuple[ExtraAlias, ...]:
    folder = root / "stackoverflow-sede"
    questions = _so_question_counts(folder / "Tags.csv")
    known = {entity.key: {loose(alias.text) for alias in entity.aliases} for entity in entities}
    found: set[ExtraAlias] = set()
    for source_tag, target_tag in _so_synonyms(folder / "TagSynonyms.csv"):
        key = registry.resolve(target_tag) or registry.resolve(_SO_VERSION.sub("", target_tag))
        if key is None or questions.get(target_tag, MIN_SO_QUESTIONS) < MIN_SO_QUESTIONS:
            continue
        for tag in (source_tag, target_tag):
            if _so_alias_fits(tag, key, registry, known[key], words):
                found.add(ExtraAlias(skill_id_for(key), tag))
    return tuple(sorted(found, key=lambda extra: (extra.entity, extra.alias)))


def _so_alias_fits(tag: str, key: str, registry: Registry, known: set[str], words: frozenset[str]) -> bool:
    # The extra file has no ambiguity flags, so homonyms ("spring-boot" is fine, "rest" is not) stay out,
    # as do tags that already name some other entity.
    if loose(tag) in known or registry.resolve(tag) not in (None, key):
        return False
    # Nor do everyday words and their plurals ("maximum" for Max, "slices" for Slice), or known mistakes.
    if (
        (key, tag.lower()) in TABLES.wrong_aliases
        or tag.lower() in words
        or tag.lower().removesuffix("s") in words
    ):
        return False
    if is_dictionary_word(tag, SENSE_WORDS):
        found = SENSES.rule_for(tag, key, "", source=STACKOVERFLOW.name)
        if found is None or found.rule != "one-sense":
            return False
    return _keeps(tag, "other") and not _word_ambiguous(tag, words)


def _so_question_counts(path: Path) -> dict[str, int]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["TagName"]: int(row["Count"] or 0) for row in csv.DictReader(handle)}


def _so_synonyms(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        # Only approved synonyms: proposals that never passed review are often wrong.
        pairs = {
            (row["SourceTagName"], row["TargetTagName"])
            for row in csv.DictReader(handle)
            if row["ApprovalDate"]
        }
    return sorted(pairs)
