"""Pieces of emails that many emails share, rendered once per process (issue 18, item 2).

A digest's entry (an item under one skill, dated in the reader's local day) is the same bytes for every
subscriber who gets it, whoever they are and whatever their signed links say; most subscribers of a slot
share their windows and often their skills. A template marks such a piece::

    {% call fragment("html", item, section.skill_name, day) %} ... {% endcall %}

with a key naming everything the piece reads. The text part keeps the rendered piece. The HTML part keeps
the piece as CSS inlining left it: a render wraps each piece it had to render in marker comments, so the
one inlining of the document inlines it in its true place, and then cuts it out to keep; a piece already
kept is only a marker while the (smaller) rest is inlined, and is put in after. Comments are not elements:
no selector sees them, so the bytes are those of inlining the whole document at once (while a piece sits
inside an element the template writes out: a parser opens an implied ``<tbody>`` at the first row, which
a kept piece's marker is not). Feed text cannot forge a marker: the HTML templates escape it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from markupsafe import Markup

# An entry's inlined HTML is about 2.5 KB and its text 0.5 KB (bench/render.py): 8,192 pieces are about
# 12 MB, the 4,096 entries of a slot's busiest skills in HTML and text.
FRAGMENT_LIMIT = 8192
# A kept piece's marker, or a piece rendered in this document between its two markers.
_MARK = re.compile(r"<!--kept:(\d+)-->|<!--fragment:(\d+)-->(.*?)<!--/fragment:\2-->", re.DOTALL)

Key = tuple[Hashable, ...]


def rendered(*key: Hashable, caller: Callable[[], str]) -> str:
    """``fragment`` outside a composer's render (a template rendered on its own): the block, not kept."""
    return caller()


class Fragments:
    """The shared pieces of one composer, least recently used out past ``limit`` (0: none kept)."""

    def __init__(self, limit: int = FRAGMENT_LIMIT) -> None:
        self.limit = limit
        self._kept: OrderedDict[Key, str] = OrderedDict()
        # A crawl worker runs tasks on threads that share one composer.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: Key) -> str | None:
        """The piece kept under ``key``, if any."""
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found

    def keep(self, key: Key, piece: str) -> None:
        """Keep ``piece`` under ``key``."""
        if not self.limit:
            return
        with self._lock:
            self._kept[key] = piece
            if len(self._kept) > self.limit:
                self._kept.popitem(last=False)

    def text(self, *key: Hashable, caller: Callable[[], str]) -> str:
        """``fragment`` of a text template: the piece kept under ``key``, else the block rendered, kept."""
        found = self.get(key)
        if found is None:
            found = caller()
            self.keep(key, found)
        return found


class HtmlSplice:
    """``fragment`` of one HTML render: markers in the markup, the pieces put back after inlining."""

    def __init__(self, fragments: Fragments) -> None:
        self.fragments = fragments
        # By marker number: the key of a piece rendered here, and the kept piece (None: rendered here).
        self._pieces: list[tuple[Key, str | None]] = []

    def __call__(self, *key: Hashable, caller: Callable[[], str]) -> Markup:
        """A marker for the kept piece, else the block rendered between two markers."""
        number = len(self._pieces)
        found = self.fragments.get(key)
        self._pieces.append((key, found))
        if found is not None:
            return Markup("<!--kept:%d-->") % number
        # The block's output is markup already (the template escapes what it prints), kept as it is.
        return Markup("<!--fragment:%d-->") % number + caller() + Markup("<!--/fragment:%d-->") % number

    def finish(self, inlined: str) -> str:
        """The inlined document with every marker replaced by its piece; the pieces rendered here kept."""
        if not self._pieces:
            return inlined

        def piece(found: re.Match[str]) -> str:
            if found.group(1) is not None:
                kept = self._pieces[int(found.group(1))][1]
                assert kept is not None
                return kept
            made = found.group(3)
            self.fragments.keep(self._pieces[int(found.group(2))][0], made)
            return made

        return _MARK.sub(piece, inlined)
