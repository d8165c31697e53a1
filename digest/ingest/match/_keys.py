"""Automaton keys: the written forms of each alias and what a hit on each key means."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from itertools import product

from digest.ingest.match._fold import fold, separate

SHORT = 3
# The boundaries a short key may carry: before it a space, "/" ("CI/CD"), "#" (a hashtag), "." (a file
# name, "takerevolve.php") or "-" ("multi-GPU"); after it a space, "/", a full stop or "-" ("LLM-based").
# Keys with a "." before or a "-" on either side are screened by ``Matcher``'s admission rules.
_LEADS = (" ", "/", "#", ".", "-")
_TRAILS = (" ", "/", ".", "-")
_UNGUARDED = (".", "-")


@dataclass(frozen=True, slots=True)
class AliasSpec:
    """One surface form of one skill, as the taxonomy gives it."""

    skill_id: str
    text: str
    ambiguous: bool = False
    case_sensitive: bool = False


@dataclass(frozen=True, slots=True)
class SkillInfo:
    """What a tag reports about its skill."""

    name: str
    category: str
    # How widely the skill is used, 0..1 (issue 15): of two senses of one name, the popular one wins.
    popularity: float = 0.0
    # Ids of its parents: one named at the head of the skill's name counts too ("NVIDIA A100").
    parents: frozenset[str] = frozenset()

    def __reduce__(self) -> tuple[type[SkillInfo], tuple[str, str, float, frozenset[str]]]:
        # By its fields: the dataclass's own ``__setstate__`` runs a Python loop per object (``match.cache``).
        return (SkillInfo, (self.name, self.category, self.popularity, self.parents))


@dataclass(frozen=True, slots=True)
class Entry:
    """One meaning of a key: which skill, and what a hit on it needs."""

    skill_id: str
    category: str
    ambiguous: bool
    # The exact (folded but not lower-cased) form a case-sensitive alias must match; None if any case does.
    cased: str | None
    # A camel-case form ("CMake") is not an accident of sentence capitalisation or Title Case.
    distinctive: bool
    # A capitalised ambiguous word ("Ruby") may also be read in lower case ("a ruby library"), but then
    # only with evidence right beside it.
    lowers: bool

    def __reduce__(self) -> tuple[type[Entry], tuple[str, str, bool, str | None, bool, bool]]:
        # By its fields: the dataclass's own ``__setstate__`` took most of a cached matcher's load time
        # (33,000 entries; ``match.cache``).
        fields = (self.skill_id, self.category, self.ambiguous, self.cased, self.distinctive, self.lowers)
        return (Entry, fields)


@dataclass(slots=True)
class Slot:
    """What one automaton key means: the span of the name inside it, and what the name is."""

    size: int
    trail: int
    check_left: bool
    check_right: bool
    # Boundaries on both sides are part of the key, and neither needs a second look.
    guarded: bool
    entries: list[Entry] = field(default_factory=list)
    # Skill ids this key is a cue (or a counter-cue) for; "" for a context word.
    signals: list[str] = field(default_factory=list)

    def value(self) -> Value:
        """The automaton's value for this key, a flat tuple because the scan unpacks it on every hit."""
        # Only unguarded short, ambiguous or case-sensitive names need the second look.
        screen = (self.size <= SHORT and not self.guarded) or any(
            entry.ambiguous or entry.cased for entry in self.entries
        )
        entries, signals = tuple(self.entries), tuple(self.signals)
        return (self.size, self.trail, self.check_left, self.check_right, entries, signals, screen)


Value = tuple[int, int, bool, bool, tuple[Entry, ...], tuple[str, ...], bool]


def add_alias(
    slots: dict[str, Slot], alias: AliasSpec, category: str, taken: frozenset[str] = frozenset()
) -> bool:
    """Add the keys of one alias; False if it has no written form. ``taken`` holds the folded aliases of
    every skill: a plural that is some skill's own name is that skill ("Polars" is not two Polar)."""
    capitalised = alias.ambiguous and alias.case_sensitive and alias.text[:1].isupper()
    # No plural of a capitalised homonym: "Sparks" is a surname, not Apache Spark.
    forms = _forms(alias.text, plural=not capitalised)
    if taken:
        own = fold(alias.text)
        forms = [form for form in forms if fold(form) == own or fold(form) not in taken]
    for form in forms:
        cased = form if alias.case_sensitive else None
        distinctive = cased is not None and _camel(cased)
        lowers = cased is not None and alias.ambiguous and len(cased) > SHORT and cased.isalpha()
        lowers = lowers and cased is not None and cased[0].isupper() and cased[1:].islower()
        entry = Entry(alias.skill_id, category, alias.ambiguous, cased, distinctive, lowers)
        for slot in _slots(slots, fold(form)):
            if entry not in slot.entries:
                slot.entries.append(entry)
    return bool(forms)


def add_signal(slots: dict[str, Slot], word: str, signal: str) -> None:
    """Add the keys of a cue or context word."""
    for slot in _slots(slots, fold(word)):
        if signal not in slot.signals:
            slot.signals.append(signal)


def _forms(text: str, plural: bool) -> list[str]:
    """The written forms of an alias: as given, with hyphens and spaces swapped, and plural."""
    base = separate(unicodedata.normalize("NFKC", text)).strip()
    if not base:
        return []
    joins = [
        i
        for i in range(1, len(base) - 1)
        if base[i] in " -" and is_word(base[i - 1]) and is_word(base[i + 1])
    ]
    # Every combination up to three joins ("deep-learning"); beyond that all spaces or all hyphens.
    choices = (
        product(" -", repeat=len(joins)) if len(joins) <= 3 else [(" ",) * len(joins), ("-",) * len(joins)]
    )
    forms: list[str] = []
    for choice in choices:
        chars = list(base)
        for index, joiner in zip(joins, choice, strict=True):
            chars[index] = joiner
        forms.append("".join(chars))
    last_word = re.split(r"[ \-]", base)[-1]
    if plural and last_word.isalpha() and len(last_word) >= 3 and not last_word.lower().endswith("s"):
        forms += [form + "s" for form in forms]
    return list(dict.fromkeys([base, *forms]))


def _slots(slots: dict[str, Slot], key: str) -> list[Slot]:
    """The slots of a folded key: itself if long, or each boundary-carrying variant if short."""
    starts_word, ends_word = is_word(key[0]), is_word(key[-1])
    if len(key) > SHORT:
        variants = [("", key, "")]
    else:
        leads = _LEADS if starts_word else ("",)
        trails = _TRAILS if ends_word else ("",)
        variants = [(lead, key, trail) for lead in leads for trail in trails]
    found = []
    for lead, name, trail in variants:
        guarded = bool(lead and trail) and lead not in _UNGUARDED and trail not in _UNGUARDED
        fresh = Slot(len(name), len(trail), starts_word and not lead, ends_word and not trail, guarded)
        slot = slots.setdefault(lead + name + trail, fresh)
        if (slot.size, slot.trail) != (len(name), len(trail)):
            # One key, two readings: a name as written (".NET") beats a shorter name with its boundaries
            # (" net" after a full stop); otherwise the key keeps its first meaning.
            if lead or trail or slot.size + slot.trail == len(lead + name + trail):
                continue
            slots[lead + name + trail] = slot = fresh
        found.append(slot)
    return found


def is_word(char: str) -> bool:
    """A word character: letters, digits and "_"."""
    return char.isalnum() or char == "_"


def _camel(form: str) -> bool:
    return any(ch.islower() for ch in form) and any(ch.isupper() for ch in form[1:])
