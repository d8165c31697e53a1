"""Text -> skill tags. Pure: a ``Matcher`` is compiled once from alias specs and then only reads text.

Text is cut into word tokens and the punctuation that skill names carry (``+ # . /``); aliases are cut
the same way and looked up as token sequences, longest first, so ``Java`` is never found inside
``JavaScript`` (one token), ``C++`` wins over ``C`` and ``Python 3.12`` is Python. Hyphens join words
(``deep-learning`` is ``deep learning``), but a short or ambiguous alias glued into a hyphenated word
(``C-suite``) does not count. Ambiguous aliases (common words, people's names) need evidence: an
unambiguous alias of the same skill in the item, or another unambiguous skill nearby and a form that is
not merely a capitalised first word of a sentence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from digest.records import TagMatch

_TOKEN = re.compile(r"[^\W_]+|[+#./]|-")
_VERSION = re.compile(r"\d+")
_SENTENCE_END = frozenset({".", "!", "?", ":"})
TITLE_WEIGHT = 3
SCORE_SCALE = 8.0


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
class _Token:
    text: str
    folded: str
    start: int
    end: int
    # True when nothing separates this token from the previous one ("Node" "." "js").
    glued: bool


@dataclass(slots=True)
class _Entry:
    skill_id: str
    ambiguous: bool


@dataclass(slots=True)
class _Hit:
    skill_id: str
    surface: str
    ambiguous: bool
    in_title: bool
    sentence_start: bool


@dataclass(slots=True)
class _Table:
    exact: dict[tuple[str, ...], list[_Entry]] = field(default_factory=dict)
    prefixes: set[tuple[str, ...]] = field(default_factory=set)

    def add(self, tokens: tuple[str, ...], entry: _Entry) -> None:
        entries = self.exact.setdefault(tokens, [])
        if all(e.skill_id != entry.skill_id for e in entries):
            entries.append(entry)
        for size in range(1, len(tokens) + 1):
            self.prefixes.add(tokens[:size])


def normalise(text: str) -> str:
    """NFKC, so full-width letters and ligatures match their plain forms."""
    return unicodedata.normalize("NFKC", text)


def tokenize(text: str) -> list[_Token]:
    """Word and punctuation tokens of ``text``; hyphens only glue (they are dropped)."""
    tokens: list[_Token] = []
    previous_end = -1
    hyphen = False
    for found in _TOKEN.finditer(normalise(text)):
        value = found.group()
        if value == "-":
            hyphen = found.start() == previous_end
            previous_end = found.end()
            continue
        glued = found.start() == previous_end
        tokens.append(_Token(value, value.casefold(), found.start(), found.end(), glued and not hyphen))
        hyphen = hyphen and glued
        previous_end = found.end()
    return tokens


class Matcher:
    """A compiled taxonomy: ``tag(title, text)`` returns the skills an item mentions."""

    def __init__(self, aliases: Iterable[AliasSpec], skills: dict[str, SkillInfo], version: str = "") -> None:
        self.version = version
        self.skills = skills
        self._folded = _Table()
        self._cased = _Table()
        self.alias_count = 0
        for alias in aliases:
            self._add(alias)

    def _add(self, alias: AliasSpec) -> None:
        tokens = tokenize(alias.text)
        if not tokens or alias.skill_id not in self.skills:
            return
        self.alias_count += 1
        table = self._cased if alias.case_sensitive else self._folded
        key = tuple(t.text if alias.case_sensitive else t.folded for t in tokens)
        entry = _Entry(alias.skill_id, alias.ambiguous)
        table.add(key, entry)
        last = key[-1]
        # Plurals: "LLMs", "vector databases".
        if last[-1:].isalpha() and len(last) >= 3 and not last.endswith("s"):
            table.add((*key[:-1], last + "s"), entry)

    def tag(self, title: str, text: str) -> list[TagMatch]:
        """Tags for an item, strongest first."""
        hits = list(self._scan(title, in_title=True)) + list(self._scan(text, in_title=False))
        return _judge(hits, self.skills)

    def _scan(self, text: str, *, in_title: bool) -> Iterator[_Hit]:
        tokens = tokenize(text)
        position = 0
        while position < len(tokens):
            found = self._longest(tokens, position)
            if found is None:
                position += 1
                continue
            end, entries = found
            if _glued_into_word(text, tokens, position, end, entries):
                position = end
                continue
            end_with_version = _absorb_version(tokens, end)
            surface = text[tokens[position].start : tokens[end_with_version - 1].end]
            sentence_start = position == 0 or tokens[position - 1].text in _SENTENCE_END
            for entry in entries:
                yield _Hit(entry.skill_id, normalise(surface), entry.ambiguous, in_title, sentence_start)
            position = end_with_version

    def _longest(self, tokens: list[_Token], start: int) -> tuple[int, list[_Entry]] | None:
        best: tuple[int, list[_Entry]] | None = None
        for table, attribute in ((self._folded, "folded"), (self._cased, "text")):
            key: tuple[str, ...] = ()
            for index in range(start, len(tokens)):
                token = tokens[index]
                if index > start and not _joinable(tokens[index - 1], token):
                    break
                key = (*key, getattr(token, attribute))
                if key not in table.prefixes:
                    break
                entries = table.exact.get(key)
                if entries and (best is None or index + 1 > best[0]):
                    best = (index + 1, entries)
        return best


def _joinable(previous: _Token, token: _Token) -> bool:
    """Punctuation inside a name must be glued to both neighbours ("Node.js", not "Node. js")."""
    if previous.folded in "+#./" or token.folded in "./":
        return token.glued
    return True


def _glued_into_word(text: str, tokens: list[_Token], start: int, end: int, entries: list[_Entry]) -> bool:
    """True when a short or ambiguous alias is only part of a hyphenated word ("C-suite")."""
    surface_len = tokens[end - 1].end - tokens[start].start
    if surface_len > 3 and not all(entry.ambiguous for entry in entries):
        return False
    before = text[max(0, tokens[start].start - 2) : tokens[start].start]
    after = text[tokens[end - 1].end : tokens[end - 1].end + 2]
    return (len(after) == 2 and after[0] == "-" and after[1].isalnum()) or (
        len(before) == 2 and before[1] == "-" and before[0].isalnum()
    )


def _absorb_version(tokens: list[_Token], end: int) -> int:
    """Let "Python 3.12" or "Java 21" read as the skill with its version."""
    if (
        end < len(tokens)
        and _VERSION.fullmatch(tokens[end].text)
        and not _VERSION.fullmatch(tokens[end - 1].text)
    ):
        end += 1
    if _VERSION.fullmatch(tokens[end - 1].text):
        while end + 1 < len(tokens) and tokens[end].text == "." and _VERSION.fullmatch(tokens[end + 1].text):
            end += 2
    return end


def _judge(hits: list[_Hit], skills: dict[str, SkillInfo]) -> list[TagMatch]:
    firm = {hit.skill_id for hit in hits if not hit.ambiguous}
    kept = [hit for hit in hits if not hit.ambiguous or _has_evidence(hit, firm)]
    grouped: dict[str, list[_Hit]] = {}
    for hit in kept:
        grouped.setdefault(hit.skill_id, []).append(hit)
    tags = [_tag(skill_id, group, skills[skill_id]) for skill_id, group in grouped.items()]
    return sorted(tags, key=lambda tag: (-tag.score, tag.name))


def _has_evidence(hit: _Hit, firm: set[str]) -> bool:
    if hit.skill_id in firm:
        return True
    others = firm - {hit.skill_id}
    return bool(others) and not hit.sentence_start


def _tag(skill_id: str, hits: list[_Hit], info: SkillInfo) -> TagMatch:
    surfaces = tuple(dict.fromkeys(hit.surface for hit in hits))
    in_title = any(hit.in_title for hit in hits)
    weight = sum(TITLE_WEIGHT if hit.in_title else 1 for hit in hits)
    return TagMatch(
        skill_id=skill_id,
        name=info.name,
        category=info.category,
        matched=surfaces,
        count=len(hits),
        in_title=in_title,
        score=round(min(1.0, weight / SCORE_SCALE), 3),
    )
