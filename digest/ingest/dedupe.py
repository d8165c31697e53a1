"""Near-duplicate stories (issue 16): the same story told by several feeds becomes one digest entry.

    (title, lead, published) -> fingerprint: SimHash of word-bigram shingles, title words, title numbers
    fingerprints -> candidate pairs (an index of title words: the other title holds every word of one)
        -> near(a, b) -> clusters (union-find): story key -> the key of its cluster

Copies with the same canonical URL already share a story key (``parse.urls.story_key``); this folds
copies under different URLs: a cross-post, a syndicated article, a tag feed's copy of a blog post.
Precision matters more than recall (two different stories must never merge), so a pair must pass every
test: SimHash distance, the same numbers in both titles (``Kubernetes 1.31`` is not ``1.32``), most title
words shared, and publication within a few days. ``tests/data/story_pairs.jsonl`` is the labelled set the
thresholds were chosen on; ``tests/ingest/test_dedupe.py`` measures them.
Pure: no database, no clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TypeVar

Key = TypeVar("Key", bound=Hashable)

BITS = 64
MAX_DISTANCE = 12
# Share of the shorter title's words the other title must hold: "Go 1.24 is out" and "Go 1.24 is out |
# Example News" are one story; "Security update for openssl" and "... for openssh" are not, nor are
# "Shares rise 5%" and "Shares fall 5%". On the labelled set every different-story pair whose titles pass
# this was at SimHash distance 21 or more, and every same-story pair that passes at 12 or less.
TITLE_CONTAINMENT = 1.0
LEAD_WORDS = 40
WITHIN = timedelta(days=3)
_WORD = re.compile(r"[^\W_]+(?:[.+#'][^\W_]+)*[+#]*")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What near-duplicate detection compares of one story."""

    simhash: int
    title_words: frozenset[str]
    numbers: frozenset[str]
    published: datetime


def words(text: str) -> list[str]:
    """Lower-cased words, keeping versions (``1.31``), ``C++``, ``C#`` and ``Node.js`` whole."""
    return _WORD.findall(text.casefold())


def fingerprint(title: str, lead: str, published: datetime) -> Fingerprint:
    """The fingerprint of a story from its title and the first ``LEAD_WORDS`` words of its text."""
    title_words = words(title)
    text = title_words + words(lead)[:LEAD_WORDS]
    shingles = [" ".join(pair) for pair in pairwise(text)] or text
    return Fingerprint(
        simhash=simhash(shingles),
        title_words=frozenset(title_words),
        numbers=frozenset(word for word in title_words if any(c.isdigit() for c in word)),
        published=published,
    )


def simhash(features: Sequence[str]) -> int:
    """Charikar's SimHash: each bit is the majority vote of the features' hashes at that bit.

    The votes are counted column by column over the hashes written in binary, which keeps the loop in C
    (a digest's window holds hundreds of items).
    """
    rows = [
        format(int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "big"), "064b")
        for f in features
    ]
    half = len(rows) / 2
    return int("".join("1" if column.count("1") > half else "0" for column in zip(*rows, strict=True)), 2)


def near(a: Fingerprint, b: Fingerprint) -> bool:
    """Whether two fingerprints are the same story (every test of the module docstring)."""
    if abs(a.published - b.published) > WITHIN or a.numbers != b.numbers:
        return False
    shorter = min(len(a.title_words), len(b.title_words))
    if not shorter or len(a.title_words & b.title_words) < TITLE_CONTAINMENT * shorter:
        return False
    return (a.simhash ^ b.simhash).bit_count() <= MAX_DISTANCE


def clusters(fingerprints: dict[Key, Fingerprint]) -> dict[Key, Key]:
    """Each key mapped to the first key (in the mapping's order) of its cluster of near duplicates."""
    order = {key: index for index, key in enumerate(fingerprints)}
    parent = {key: key for key in fingerprints}

    def root(key: Key) -> Key:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    # Every title word of the shorter title must be in the other (TITLE_CONTAINMENT), so the candidates of
    # a story are the stories whose titles hold all of its words: the intersection of their postings.
    postings: dict[str, set[Key]] = {}
    for key, print_ in fingerprints.items():
        for word in print_.title_words:
            postings.setdefault(word, set()).add(key)
    for key, print_ in fingerprints.items():
        if not print_.title_words:
            continue
        lists = sorted((postings[word] for word in print_.title_words), key=len)
        for other in lists[0].intersection(*lists[1:]) - {key}:
            if root(key) != root(other) and near(print_, fingerprints[other]):
                first, second = sorted((root(key), root(other)), key=order.__getitem__)
                parent[second] = first
    return {key: root(key) for key in fingerprints}
