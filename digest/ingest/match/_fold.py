"""Folding: text read the way automaton keys are written, at the same length so offsets carry over."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Sequence

# Punctuation that skill names carry ("C++", "C#", ".NET", "CI/CD", "R&D", "F*", "@angular"); any other
# punctuation and all white space read as a space, in aliases and text alike. "_" stays a word character.
KEEP = "+#./-&*@_"
_ASCII_SEPARATORS = "".join(ch for ch in string.punctuation + string.whitespace if ch not in KEEP)
# Curly quotes, dashes, ellipsis and bullets survive NFKC; they separate words like a space.
_OTHER_SEPARATORS = "\x85\u2028\u2029‘’‚‛“”„‟«»‹›–—―…•·"
# The space itself is left out: replacing it by itself would only cost time.
_SEPARATORS = re.compile("[" + re.escape((_ASCII_SEPARATORS + _OTHER_SEPARATORS).replace(" ", "")) + "]")
# ASCII text (most feeds) folds in one C pass: separators to spaces and A-Z to a-z at once.
_ASCII_FOLD = bytes.maketrans(
    (_ASCII_SEPARATORS + string.ascii_uppercase).encode(),
    (" " * len(_ASCII_SEPARATORS) + string.ascii_lowercase).encode(),
)
# After ``str.lower`` only the ASCII separators are left to map; in UTF-8 every byte of a non-ASCII
# character is >= 0x80, so a byte table maps the ASCII ones without touching the rest.
_UTF8_SEPARATE = bytes.maketrans(_ASCII_SEPARATORS.encode(), b" " * len(_ASCII_SEPARATORS))
# The only characters of real feed text that need NFKC, measured on the fixtures: "…" and the no-break
# space. Replaced by their NFKC forms, most text is then ASCII or already normal and skips ``normalize``.
_COMMON_COMPATIBILITY = (("\u2026", "..."), ("\xa0", " "))


def fold(text: str) -> str:
    """``text`` lower-cased with separators read as spaces, at the same length so offsets carry over."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii")
    # "İ".lower() is two characters, the only code point whose lower case changes length (a test checks).
    lowered = text.replace("İ", "I").lower()
    # Lone surrogates cannot be encoded; they are no part of any name, so the slow path is fine for them.
    try:
        separated = lowered.encode("utf-8").translate(_UTF8_SEPARATE).decode("utf-8")
    except UnicodeEncodeError:
        return separate(lowered)
    # A few str.replace scans (C speed, nothing to do for most) beat one regular expression over a batch.
    for char in _OTHER_SEPARATORS:
        if char in separated:
            separated = separated.replace(char, " ")
    return separated


class TextFolder:
    """``fold`` for text scanned against given folded keys, at half its cost on non-ASCII text.

    ``str.lower`` looks up every character of a non-ASCII string. Only the letters the keys hold need it,
    so ASCII letters are lowered in bytes and the few non-ASCII capitals whose lower case a key holds are
    replaced one by one; any other character stays as it is (and "İ" keeps its length).
    """

    def __init__(self, keys: Iterable[str]) -> None:
        letters = {char for key in keys for char in key if not char.isascii() and char.islower()}
        self._capitals = tuple(
            (capital, letter)
            for letter in sorted(letters)
            for capital in dict.fromkeys([letter.upper(), letter.title()])
            if len(capital) == 1 and capital != letter and capital.lower() == letter
        )

    def __call__(self, text: str) -> str:
        """``text`` folded as the keys were."""
        if text.isascii():
            return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii")
        folded = self._unicode(text)
        return fold(text) if folded is None else folded

    def joined(self, separator: str, parts: Sequence[str]) -> str:
        """``separator.join(parts)`` folded: the same text as the parts folded one by one, in one pass.

        Every step maps one character to one character, so folding the joined text is folding each part
        (at a fraction of the calls: a batch of feed items mixes ASCII and non-ASCII ones).
        """
        text = separator.join(parts)
        if text.isascii():
            return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii")
        folded = self._unicode(text)
        # A lone surrogate sends its own part down ``fold``'s path only, as folding part by part does.
        return self(separator).join(map(self, parts)) if folded is None else folded

    def _unicode(self, text: str) -> str | None:
        """Non-ASCII ``text`` folded; None if it cannot be encoded (a lone surrogate)."""
        try:
            # The ASCII table leaves every byte of a non-ASCII character (all >= 0x80) alone.
            folded = text.encode("utf-8").translate(_ASCII_FOLD).decode("utf-8")
        except UnicodeEncodeError:
            return None
        for char in _OTHER_SEPARATORS:
            if char in folded:
                folded = folded.replace(char, " ")
        for capital, letter in self._capitals:
            if capital in folded:
                folded = folded.replace(capital, letter)
        return folded


def separate(text: str) -> str:
    """``text`` with separators read as spaces (no case folding)."""
    return _SEPARATORS.sub(" ", text)


def nfkc(text: str) -> str:
    """NFKC, the compatibility form: full-width letters, ligatures and the like read as plain ones."""
    # ASCII is already NFKC; skipping the call saves more than its quick check costs.
    if text.isascii():
        return text
    for char, form in _COMMON_COMPATIBILITY:
        if char in text:
            text = text.replace(char, form)
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    return unicodedata.normalize("NFKC", text)
