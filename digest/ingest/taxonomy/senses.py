"""Sense rules for aliases that are dictionary words (issue 15, item 3): ``digest/data/senses.yaml``.

An alias that is an English word ("Python", "Markdown", "sanity") tags prose about snakes, text and
sanity unless a rule says when it names the skill. The rules are data, each with a ``why``: entries for one
alias (of one skill or of any), then classes by the alias's shape and the skill's category; the first that
fits gives the rule. The taxonomy build turns a rule into alias flags; ``digest taxonomy audit`` reads the
same file, so an alias whose rule keeps it unflagged (``one-sense``) is not reported.

- ``exact``: counts only written exactly so ("Markdown", "SAX"); no other evidence needed;
- ``cased``: written with its capitals it counts alone; in lower case only with evidence right beside it
  ("a python library"), never in capitals ("PYTHON");
- ``evidence``: counts only with evidence in the item (a programming word beside it, a cue, another skill);
- ``never``: the alias is dropped; the word is no name of the skill ("inc" for PHP, "rake" for Ruby);
- ``one-sense``: the word names the skill in any text ("malware", "cryptography"): no rule needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from digest.errors import InvalidInputError
from digest.ingest.taxonomy.files import DATA

SENSES = DATA / "senses.yaml"
Rule = Literal["exact", "cased", "evidence", "never", "one-sense"]
RULES: tuple[Rule, ...] = ("exact", "cased", "evidence", "never", "one-sense")
Shape = Literal["upper", "capitalised", "mixed", "lower"]
SHAPES: tuple[Shape, ...] = ("upper", "capitalised", "mixed", "lower")


@dataclass(frozen=True, slots=True)
class SenseRule:
    """The rule for one alias and where it comes from (an entry, or a class by its name)."""

    rule: Rule
    why: str
    origin: str


@dataclass(frozen=True, slots=True)
class SenseClass:
    """A rule for every alias of a shape in some categories (empty: any)."""

    name: str
    rule: Rule
    why: str
    shapes: frozenset[str]
    categories: frozenset[str]
    sources: frozenset[str]

    def fits(self, shape: str, category: str, source: str) -> bool:
        """Whether an alias of this shape, of a skill in this category, from this source is in the class."""
        return (
            (not self.shapes or shape in self.shapes)
            and (not self.categories or category in self.categories)
            and (not self.sources or source in self.sources)
        )


@dataclass(frozen=True, slots=True)
class Senses:
    """Every rule of the file: per alias (``skill key`` or "*", lower-case alias), then the classes."""

    entries: dict[tuple[str, str], SenseRule]
    classes: tuple[SenseClass, ...]

    def rule_for(
        self, alias: str, skill_key: str, category: str, source: str = "taxonomy"
    ) -> SenseRule | None:
        """The rule for ``alias`` of the skill ``skill_key``: its entry, else the first class that fits."""
        word = alias.lower()
        found = self.entries.get((skill_key, word)) or self.entries.get(("*", word))
        if found is not None:
            return found
        shape = shape_of(alias)
        for sense_class in self.classes:
            if sense_class.fits(shape, category, source):
                return SenseRule(sense_class.rule, sense_class.why, f"class {sense_class.name}")
        return None


def shape_of(alias: str) -> Shape:
    """How an alias is written: "SAX", "Python", "spaCy" or "pip"."""
    letters = [char for char in alias if char.isalpha()]
    if not any(char.isupper() for char in letters):
        return "lower"
    if len(letters) > 1 and all(char.isupper() for char in letters):
        return "upper"
    if letters[0].isupper() and all(char.islower() for char in letters[1:]):
        return "capitalised"
    return "mixed"


def is_dictionary_word(alias: str, words: frozenset[str]) -> bool:
    """Whether an alias is one dictionary word (punctuation the matcher folds away aside: "Act!")."""
    folded = alias.lower().rstrip("!?.")
    return " " not in folded and folded in words


def read_senses(path: Path = SENSES) -> Senses:
    """Read and check the rules file; a malformed entry is an ``InvalidInputError`` naming it."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise InvalidInputError(f"{path}: expected a mapping with classes and entries")
    classes = tuple(_class(path, number, row) for number, row in enumerate(document.get("classes") or [], 1))
    entries: dict[tuple[str, str], SenseRule] = {}
    for number, row in enumerate(document.get("entries") or [], 1):
        rule, why = _rule(path, f"entry {number}", row)
        if not str(row.get("alias") or "").strip():
            raise InvalidInputError(f"{path}: entry {number} needs an alias")
        key = (str(row.get("skill") or "*"), str(row["alias"]).lower())
        if key in entries:
            raise InvalidInputError(f"{path}: entry {number} repeats the alias {row['alias']!r}")
        entries[key] = SenseRule(rule, why, "entry")
    return Senses(entries, classes)


def _class(path: Path, number: int, row: Any) -> SenseClass:
    rule, why = _rule(path, f"class {number}", row)
    shapes = frozenset(str(shape) for shape in row.get("shapes") or ())
    if not row.get("name") or not shapes <= set(SHAPES):
        raise InvalidInputError(f"{path}: class {number} needs a name and shapes among {', '.join(SHAPES)}")
    return SenseClass(
        str(row["name"]),
        rule,
        why,
        shapes,
        frozenset(str(category) for category in row.get("categories") or ()),
        frozenset(str(source) for source in row.get("sources") or ()),
    )


def _rule(path: Path, where: str, row: Any) -> tuple[Rule, str]:
    if not isinstance(row, dict) or not str(row.get("why") or "").strip():
        raise InvalidInputError(f"{path}: {where} needs a why")
    rule = row.get("rule")
    for known in RULES:
        if rule == known:
            return known, str(row["why"])
    raise InvalidInputError(f"{path}: {where} has the rule {rule!r}; expected one of {', '.join(RULES)}")
