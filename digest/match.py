"""Text -> skill tags. Pure: a ``Matcher`` is compiled once from alias specs and then only reads text.

Engine (issue 4): each alias is folded (NFKC, lower case, punctuation that no skill name needs read as a
space) into keys of ONE Aho-Corasick automaton, with its plural ("LLMs") and hyphen/space variants
("deep-learning" = "deep learning"). An item is folded the same way, keeping its length so offsets map
back to the original, and scanned once with ``Automaton.iter``; only the hits cost Python:

1. boundaries: a match starts and ends at a word boundary ("Rust" is not in "trust", "Java" not in
   "JavaScript"). Keys of three characters or fewer carry their boundaries inside the key (" c ", "/c."),
   so the automaton never reports the many "c"s and "go"s inside words;
2. case: a case-sensitive alias must match the original text exactly ("Go", not "go");
3. hyphens: a short or ambiguous alias glued by a hyphen into a word does not count ("C-suite");
4. the longest of overlapping matches wins ("C++" over "C", "ASP.NET" over ".NET");
5. a version right after a name is part of it ("Python 3.12", "Java 21", "C++17");
6. evidence: an ambiguous alias (a common word, a person's name) counts only with evidence. Strong
   evidence: an unambiguous alias of the same skill in the item ("Golang"), a version ("Go 1.25"), a cue
   of that skill ("Rust's crates") or a camel-case form ("CMake"). Context: another skill with strong
   evidence or a context word ("library", "developers"). Context is not enough for generic concepts
   ("Server"): there the plain word is the likelier reading. A capitalised first word is no evidence.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise, product
from typing import Any, NamedTuple

import ahocorasick

from digest.records import TagMatch

TITLE_WEIGHT = 3
SCORE_SCALE = 8.0
# Punctuation that skill names carry ("C++", "C#", ".NET", "CI/CD", "R&D", "F*", "@angular"); any other
# punctuation and all white space read as a space, in aliases and text alike. "_" stays a word character.
_KEEP = "+#./-&*@_"
_ASCII_SEPARATORS = "".join(ch for ch in string.punctuation + string.whitespace if ch not in _KEEP)
# Curly quotes, dashes, ellipsis and bullets survive NFKC; they separate words like a space.
_OTHER_SEPARATORS = "\x85\u2028\u2029‘’‚‛“”„‟«»‹›–—―…•·"
# The space itself is left out: replacing it by itself would only cost time.
_SEPARATORS = re.compile("[" + re.escape((_ASCII_SEPARATORS + _OTHER_SEPARATORS).replace(" ", "")) + "]")
# ASCII text (most feeds) folds in one C pass: separators to spaces and A-Z to a-z at once.
_ASCII_FOLD = bytes.maketrans(
    (_ASCII_SEPARATORS + string.ascii_uppercase).encode(),
    (" " * len(_ASCII_SEPARATORS) + string.ascii_lowercase).encode(),
)
# Between title and text: no key holds a NUL, so no name spans the two.
_BETWEEN = " \x00 "
_SHORT = 3
# The boundaries a short key may carry: before it a space, "/" ("CI/CD") or "#" (a hashtag), after it a
# space, "/" or a full stop. A hyphen is missing on purpose: short aliases glued by hyphens do not count.
_LEADS = (" ", "/", "#")
_TRAILS = (" ", "/", ".")
_PAD = "  "
_VERSION = re.compile(r" ?v?(\d+)(\.\d+)*(?!\w)")
_MORE_VERSION = re.compile(r"(\.\d+)+(?!\w)")
_GENERIC = frozenset({"concept"})
# A context word in the item is evidence that an ambiguous name is meant as technology.
CONTEXT_WORDS = (
    "programming", "programmer", "programmers", "language", "framework", "frameworks", "library",
    "libraries", "compiler", "deploy", "deployed", "deploying", "cluster", "clusters", "api", "apis",
    "open source", "open-source", "github", "code", "codebase", "developer", "developers", "sdk",
    "runtime", "repository", "software",
)  # fmt: skip
# Cues of one skill, keyed by its name: "Rust's crates", "Go's goroutines".
CUES: dict[str, tuple[str, ...]] = {
    "rust": ("crate", "crates", "cargo", "borrow checker", "rustc", "rustacean", "rustaceans"),
    "go": ("goroutine", "goroutines", "gopher", "gophers"),
    "docker": ("dockerfile", "container", "containers"),
    "react": ("jsx", "component", "components", "hooks"),
    "pandas": ("dataframe", "dataframes"),
    "git": ("commit", "commits", "rebase", "repo", "repos"),
}
_CONTEXT = ""


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


@dataclass(frozen=True, slots=True)
class _Entry:
    skill_id: str
    ambiguous: bool
    # The exact (folded but not lower-cased) form a case-sensitive alias must match; None if any case does.
    cased: str | None
    # A camel-case form ("CMake") is not an accident of sentence capitalisation or Title Case.
    distinctive: bool


@dataclass(slots=True)
class _Slot:
    """What one automaton key means: the span of the name inside it, and what the name is."""

    size: int
    trail: int
    check_left: bool
    check_right: bool
    # Boundaries on both sides are part of the key, and neither can be a hyphen.
    guarded: bool
    entries: list[_Entry] = field(default_factory=list)
    # Skill ids this key is a cue for; _CONTEXT for a context word.
    signals: list[str] = field(default_factory=list)

    def value(self) -> _Value:
        """The automaton's value for this key, a flat tuple because the scan unpacks it on every hit."""
        # Only unguarded short, ambiguous or case-sensitive names need _admit's second look.
        screen = (self.size <= _SHORT and not self.guarded) or any(
            entry.ambiguous or entry.cased for entry in self.entries
        )
        entries, signals = tuple(self.entries), tuple(self.signals)
        return (self.size, self.trail, self.check_left, self.check_right, entries, signals, screen)


_Value = tuple[int, int, bool, bool, tuple[_Entry, ...], tuple[str, ...], bool]
_Span = tuple[int, int, tuple[_Entry, ...]]


class _Hit(NamedTuple):
    skill_id: str
    surface: str
    ambiguous: bool
    in_title: bool
    # A version number or camel-case form: evidence for this hit alone.
    marked: bool


def fold(text: str) -> str:
    """``text`` lower-cased with separators read as spaces, at the same length so offsets carry over."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii")
    # "İ".lower() is two characters, the only code point whose lower case changes length (a test checks).
    return _separate(text.replace("İ", "I").lower())


def _separate(text: str) -> str:
    return _SEPARATORS.sub(" ", text)


def _nfkc(text: str) -> str:
    # ASCII is already NFKC; skipping the call saves more than its quick check costs.
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


class Matcher:
    """A compiled taxonomy: ``tag(title, text)`` returns the skills an item mentions."""

    def __init__(self, aliases: Iterable[AliasSpec], skills: dict[str, SkillInfo], version: str = "") -> None:
        self.version = version
        self.skills = skills
        self.alias_count = 0
        slots: dict[str, _Slot] = {}
        for alias in aliases:
            if alias.skill_id in skills and _add_alias(slots, alias):
                self.alias_count += 1
        for word in CONTEXT_WORDS:
            _add_signal(slots, word, _CONTEXT)
        for skill_id, info in skills.items():
            for cue in CUES.get(info.name.casefold(), ()):
                _add_signal(slots, cue, skill_id)
        self._automaton: Any = ahocorasick.Automaton()
        for key, slot in slots.items():
            self._automaton.add_word(key, slot.value())
        self._automaton.make_automaton()

    def tag(self, title: str, text: str) -> list[TagMatch]:
        """Tags for an item, strongest first."""
        title = _nfkc(title)
        # Both padded, so offsets agree and boundary checks look two characters either side unguarded.
        whole = _PAD + title + _BETWEEN + _nfkc(text) + _PAD
        folded = fold(whole)
        spans, signals = self._spans(whole, folded)
        if not spans:
            return []
        title_end = len(_PAD) + len(title)
        hits = [
            hit
            for start, stop, entries in _longest(spans)
            for hit in _hits(whole, start, stop, entries, title_end)
        ]
        return _judge(hits, signals, self.skills)

    def _spans(self, whole: str, folded: str) -> tuple[list[_Span], set[str]]:
        """The names found at their boundaries, and the cues and context words."""
        spans: list[_Span] = []
        found: set[str] = set()
        for end, (size, trail, check_left, check_right, entries, signals, screen) in self._automaton.iter(
            folded
        ):
            stop = end + 1 - trail
            start = stop - size
            # Inlined word-character tests: this loop runs on every hit, most of them inside words.
            if check_left and ((char := folded[start - 1]).isalnum() or char == "_"):
                continue
            if check_right and ((char := folded[stop]).isalnum() or char == "_"):
                continue
            if signals:
                found.update(signals)
            if entries and screen:
                entries = _admit(whole, folded, start, stop, entries)
            if entries:
                spans.append((start, stop, entries))
        return spans, found


def _add_alias(slots: dict[str, _Slot], alias: AliasSpec) -> bool:
    forms = _forms(alias.text)
    for form in forms:
        cased = form if alias.case_sensitive else None
        distinctive = cased is not None and _camel(cased)
        entry = _Entry(alias.skill_id, alias.ambiguous, cased, distinctive)
        for slot in _slots(slots, fold(form)):
            if entry not in slot.entries:
                slot.entries.append(entry)
    return bool(forms)


def _add_signal(slots: dict[str, _Slot], word: str, signal: str) -> None:
    for slot in _slots(slots, fold(word)):
        if signal not in slot.signals:
            slot.signals.append(signal)


def _forms(text: str) -> list[str]:
    """The written forms of an alias: as given, with hyphens and spaces swapped, and plural."""
    base = _separate(unicodedata.normalize("NFKC", text)).strip()
    if not base:
        return []
    joins = [
        i
        for i in range(1, len(base) - 1)
        if base[i] in " -" and _is_word(base[i - 1]) and _is_word(base[i + 1])
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
    if last_word.isalpha() and len(last_word) >= 3 and not last_word.lower().endswith("s"):
        forms += [form + "s" for form in forms]
    return list(dict.fromkeys([base, *forms]))


def _slots(slots: dict[str, _Slot], key: str) -> list[_Slot]:
    """The slots of a folded key: itself if long, or each boundary-carrying variant if short."""
    starts_word, ends_word = _is_word(key[0]), _is_word(key[-1])
    if len(key) > _SHORT:
        variants = [("", key, "")]
    else:
        leads = _LEADS if starts_word else ("",)
        trails = _TRAILS if ends_word else ("",)
        variants = [(lead, key, trail) for lead in leads for trail in trails]
    found = []
    for lead, name, trail in variants:
        slot = slots.setdefault(
            lead + name + trail,
            _Slot(
                len(name), len(trail), starts_word and not lead, ends_word and not trail, bool(lead and trail)
            ),
        )
        # A key that is one name with boundaries and another name without them keeps its first meaning.
        if (slot.size, slot.trail) == (len(name), len(trail)):
            found.append(slot)
    return found


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _camel(form: str) -> bool:
    return any(ch.islower() for ch in form) and any(ch.isupper() for ch in form[1:])


def _admit(text: str, folded: str, start: int, stop: int, entries: tuple[_Entry, ...]) -> tuple[_Entry, ...]:
    """The entries whose case matches, none if a short or ambiguous name is glued into a hyphenated word."""
    if stop - start <= _SHORT or all(entry.ambiguous for entry in entries):
        glued_after = folded[stop] == "-" and _is_word(folded[stop + 1])
        glued_before = folded[start - 1] == "-" and _is_word(folded[start - 2])
        if glued_after or glued_before:
            return ()
    if all(entry.cased is None for entry in entries):
        return entries
    surface = _separate(text[start:stop])
    return tuple(entry for entry in entries if entry.cased is None or entry.cased == surface)


def _longest(spans: list[_Span]) -> list[_Span]:
    """Of overlapping spans the longest wins (then the leftmost); returned in text order."""
    # Most items have no overlap; the scan reports spans by end, which is then also text order.
    if all(first[1] <= second[0] for first, second in pairwise(spans)):
        return spans
    chosen: list[_Span] = []
    for span in sorted(spans, key=lambda span: (span[0] - span[1], span[0])):
        if all(span[1] <= other[0] or span[0] >= other[1] for other in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda span: span[0])


def _hits(text: str, start: int, stop: int, entries: tuple[_Entry, ...], title_end: int) -> list[_Hit]:
    versioned, stop = _version(text, stop)
    surface = text[start:stop]
    in_title = start < title_end
    return [
        _Hit(entry.skill_id, surface, entry.ambiguous, in_title, versioned or entry.distinctive)
        for entry in entries
    ]


def _version(text: str, stop: int) -> tuple[bool, int]:
    """Absorb a version after a name; a dotted one or a small number is evidence, a year is not."""
    if not text[stop : stop + 3].lstrip(" v.")[:1].isdigit():
        return False, stop  # no digit follows: skip the regular expressions
    if text[stop - 1 : stop].isdigit():
        more = _MORE_VERSION.match(text, stop)
        return False, more.end() if more else stop
    found = _VERSION.match(text, stop)
    if found is None:
        return False, stop
    return bool(found.group(2)) or int(found.group(1)) < 100, found.end()


def _judge(hits: list[_Hit], signals: set[str], skills: dict[str, SkillInfo]) -> list[TagMatch]:
    """Keep each skill with evidence (see the module docstring) and make its tag."""
    groups: dict[str, list[_Hit]] = {}
    strong: set[str] = set()
    for hit in hits:
        groups.setdefault(hit.skill_id, []).append(hit)
        if not hit.ambiguous or hit.marked or hit.skill_id in signals:
            strong.add(hit.skill_id)
    context = _CONTEXT in signals
    tags = [
        _tag(skill_id, group, skills[skill_id])
        for skill_id, group in groups.items()
        if skill_id in strong or (skills[skill_id].category not in _GENERIC and (context or bool(strong)))
    ]
    tags.sort(key=lambda tag: (-tag.score, tag.name))
    return tags


def _tag(skill_id: str, hits: list[_Hit], info: SkillInfo) -> TagMatch:
    weight = 0
    in_title = False
    for hit in hits:
        weight += TITLE_WEIGHT if hit.in_title else 1
        in_title = in_title or hit.in_title
    return TagMatch(
        skill_id=skill_id,
        name=info.name,
        category=info.category,
        matched=tuple(dict.fromkeys([hit.surface for hit in hits])),
        count=len(hits),
        in_title=in_title,
        score=round(min(1.0, weight / SCORE_SCALE), 3),
    )
