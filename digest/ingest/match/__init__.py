"""Text -> skill tags. Pure: a ``Matcher`` is compiled once from alias specs and then only reads text.

Engine (issue 4): each alias is folded (NFKC, lower case, punctuation that no skill name needs read as a
space) into keys of ONE Aho-Corasick automaton, with its plural ("LLMs") and hyphen/space variants
("deep-learning" = "deep learning"). ``tag_many`` joins a batch of items (a NUL between any two, which no
key holds), normalises and folds the batch once, keeping lengths so offsets map back to the normalised
text, and scans it with ONE ``Automaton.iter``; only the hits cost Python, and hits are routed to their
item by offset:

1. boundaries: a match starts and ends at a word boundary ("Rust" is not in "trust", "Java" not in
   "JavaScript"). Keys of three characters or fewer carry their boundaries inside the key (" c ", "/c."),
   so the automaton never reports the many "c"s and "go"s inside words;
2. case: a case-sensitive alias must match the original text exactly ("Go", not "go"); a capitalised
   homonym read in lower case ("a ruby library") needs evidence right beside it;
3. hyphens: an ambiguous alias glued by a hyphen into a word does not count ("C-suite", "Go-getter"); an
   unambiguous one does ("LLM-based", "GPU-accelerated");
4. URLs and file names: nothing inside a URL counts ("https://..." is no mention of HTTP); after a dot
   inside a word only a lower-case language name counts, as a file extension ("takerevolve.php");
5. the longest of overlapping matches wins ("C++" over "C", "ASP.NET" over ".NET"), but a parent of the
   longer skill named at its head counts too ("NVIDIA A100" names NVIDIA, "Docker images" Docker);
6. a version right after a name is part of it ("Python 3.12", "Java 21", "C++17");
7. evidence: an ambiguous alias (a common word, a person's name) counts only with evidence; see
   ``digest.match._evidence``.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from typing import Any

import ahocorasick

from digest.ingest.match._evidence import (
    CONTEXT,
    CONTEXT_WORDS,
    COUNTER,
    COUNTER_CUES,
    CUES,
    SCORE_SCALE,
    TITLE_WEIGHT,
    Hit,
    judge,
)
from digest.ingest.match._fold import TextFolder, fold, nfkc, separate
from digest.ingest.match._keys import AliasSpec, Entry, SkillInfo, Slot, add_alias, add_signal, is_word
from digest.records import TagMatch

__all__ = [
    "CONTEXT_WORDS",
    "CUES",
    "SCORE_SCALE",
    "TITLE_WEIGHT",
    "AliasSpec",
    "Matcher",
    "SkillInfo",
    "fold",
]

# Between title and text, and between two items of a batch: no key holds a NUL, so no name spans them.
_BETWEEN = " \x00 "
_PAD = "  "
_SEPARATOR = _PAD + "\x00" + _PAD
_VERSION = re.compile(r" ?v?(\d+)(\.\d+)*(?!\w)")
_MORE_VERSION = re.compile(r"(\.\d+)+(?!\w)")
# Where a URL ends; it starts at its scheme ("https", "chrome") before "://".
_URL_END = re.compile(r"[^\s\x00<>\"']*")
_SCHEME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_FAR = 1 << 62
_Span = tuple[int, int, tuple[Entry, ...]]
Document = tuple[str, str]


class Matcher:
    """A compiled taxonomy: ``tag(title, text)`` returns the skills an item mentions."""

    def __init__(self, aliases: Iterable[AliasSpec], skills: dict[str, SkillInfo], version: str = "") -> None:
        self.version = version
        self.skills = skills
        self.alias_count = 0
        slots: dict[str, Slot] = {}
        aliases = [alias for alias in aliases if alias.skill_id in skills]
        taken = frozenset(fold(alias.text) for alias in aliases)
        for alias in aliases:
            if add_alias(slots, alias, skills[alias.skill_id].category, taken):
                self.alias_count += 1
        for word in CONTEXT_WORDS:
            add_signal(slots, word, CONTEXT)
        for skill_id, info in skills.items():
            for cue in CUES.get(info.name.casefold(), ()):
                add_signal(slots, cue, skill_id)
            for cue in COUNTER_CUES.get(info.name.casefold(), ()):
                add_signal(slots, cue, COUNTER + skill_id)
        self._fold = TextFolder(slots)
        self._automaton: Any = ahocorasick.Automaton()
        for key, slot in slots.items():
            self._automaton.add_word(key, slot.value())
        self._automaton.make_automaton()

    def tag(self, title: str, text: str) -> list[TagMatch]:
        """Tags for an item, strongest first."""
        return self.tag_many([(title, text)])[0]

    def tag_many(self, documents: Sequence[Document]) -> list[list[TagMatch]]:
        """Tags for each (title, text) item of a batch, in order; one scan for the whole batch."""
        if not documents:
            return []
        parts: list[str] = []
        title_ends: list[int] = []
        ends: list[int] = []
        position = len(_PAD)
        for title, text in documents:
            title = nfkc(title)
            document = title + _BETWEEN + nfkc(text)
            parts.append(document)
            title_ends.append(position + len(title))
            position += len(document)
            ends.append(position)
            position += len(_SEPARATOR)
        whole = _PAD + _SEPARATOR.join(parts) + _PAD
        # Folded as one text: per item it was a tenth of the matcher's time, in calls (issue 15 item 6).
        folded = _PAD + self._fold.joined(_SEPARATOR, parts) + _PAD
        spans, overlapping, signals = self._scan(whole, folded, ends)
        urls = _urls(whole) if "://" in whole else []
        # A URL ends at white space, so it lies inside one item: only that item's names are looked up.
        linked = {bisect_left(ends, start) for start, _ in urls}
        results: list[list[TagMatch]] = [[] for _ in documents]
        for index, found in spans.items():
            if index in linked:
                found = [span for span in found if not _inside(urls, span[0])]
            if index in overlapping:
                found = _longest(found, self.skills)
            hits: list[Hit] = []
            title_end = title_ends[index]
            for start, stop, entries in found:
                _add_hits(hits, whole, start, stop, entries, title_end)
            if hits:
                results[index] = judge(hits, signals.get(index, set()), self.skills, whole, folded)
        return results

    def _scan(
        self, whole: str, folded: str, ends: list[int]
    ) -> tuple[dict[int, list[_Span]], set[int], dict[int, set[str]]]:
        """Per item (by index): the names found at their boundaries, in text order; the items where two
        of them overlap; and each item's cues and context words."""
        spans: dict[int, list[_Span]] = {}
        overlapping: set[int] = set()
        found: dict[int, set[str]] = {}
        index, bound = 0, ends[0]
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
            if stop > bound:
                index = bisect_left(ends, stop)
                bound = ends[index]
            if signals:
                found.setdefault(index, set()).update(signals)
            if entries and (screen or folded[start - 1] in ".-"):
                entries = _admit(whole, folded, start, stop, entries)
            if entries:
                named = spans.get(index)
                if named is None:
                    spans[index] = [(start, stop, entries)]
                else:
                    # Spans come in the order of their ends, so one that starts before the last one
                    # stops overlaps it (and only then can any two overlap).
                    if start < named[-1][1]:
                        overlapping.add(index)
                    named.append((start, stop, entries))
        return spans, overlapping, found


def _admit(text: str, folded: str, start: int, stop: int, entries: tuple[Entry, ...]) -> tuple[Entry, ...]:
    """The entries that may stand here: case, hyphens and file names (module docstring, rules 2-4)."""
    before = folded[start - 1]
    glued = (before == "-" and is_word(folded[start - 2])) or (
        folded[stop] == "-" and is_word(folded[stop + 1])
    )
    dotted = before == "." and is_word(folded[start - 2])
    surface = ""
    kept: list[Entry] = []
    for entry in entries:
        if glued and entry.ambiguous:
            continue
        if dotted and not (entry.category == "language" and text[start:stop].islower()):
            continue
        if entry.cased is not None:
            if not surface:
                surface = text[start:stop]
                surface = surface if surface.isalnum() else separate(surface)
            if entry.cased != surface and not (entry.lowers and entry.cased.lower() == surface):
                continue
        kept.append(entry)
    return tuple(kept) if len(kept) != len(entries) else entries


def _urls(text: str) -> list[tuple[int, int]]:
    """The spans of the URLs in ``text`` (scheme "://" and what follows up to white space)."""
    found: list[tuple[int, int]] = []
    at = text.find("://")
    while at >= 0:
        start = at
        while start > 0 and text[start - 1] in _SCHEME:
            start -= 1
        match = _URL_END.match(text, at + 3)
        stop = match.end() if match else at + 3
        found.append((start, stop))
        at = text.find("://", stop)
    return found


def _inside(urls: list[tuple[int, int]], position: int) -> bool:
    index = bisect_right(urls, (position, _FAR)) - 1
    return index >= 0 and urls[index][0] <= position < urls[index][1]


def _longest(spans: list[_Span], skills: dict[str, SkillInfo]) -> list[_Span]:
    """Of overlapping spans the longest wins (then the leftmost); returned in text order.

    A shorter span at the head of a winner stays for the skills that are a parent of the winner's: a
    longer entity implies its parent product when it names it (issue 15: "Docker images" is about Docker,
    "NVIDIA A100" about NVIDIA), while "Google Cloud" says nothing of Google, which is no parent of it.
    """
    chosen: list[_Span] = []
    heads: list[_Span] = []
    for span in sorted(spans, key=lambda span: (span[0] - span[1], span[0])):
        if all(span[1] <= other[0] or span[0] >= other[1] for other in chosen):
            chosen.append(span)
            continue
        parents = {
            parent
            for other in chosen
            if other[0] == span[0] and span[1] < other[1]
            for entry in other[2]
            for parent in skills[entry.skill_id].parents
        }
        implied = tuple(entry for entry in span[2] if entry.skill_id in parents)
        if implied:
            heads.append((span[0], span[1], implied))
    return sorted(chosen + heads, key=lambda span: span[0])


def _add_hits(
    hits: list[Hit], text: str, start: int, stop: int, entries: tuple[Entry, ...], title_end: int
) -> None:
    """Append a hit for each entry of the span, with the version that follows the name, if any."""
    # Inlined first test of ``_version``: most names have no digit after them.
    if text[stop : stop + 3].lstrip(" v.")[:1].isdigit():
        versioned, end = _version(text, stop)
    else:
        versioned, end = False, stop
    surface = text[start:end]
    in_title = start < title_end
    for entry in entries:
        hits.append(
            Hit(
                entry.skill_id,
                surface,
                entry.ambiguous,
                in_title,
                versioned or entry.distinctive,
                entry,
                start,
                end,
                stop,
            )
        )


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
