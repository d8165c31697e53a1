"""HTML fragments from feeds: the safe subset a digest shows (nh3), plain text, clipped titles."""

from __future__ import annotations

import html
import re

import nh3

MAX_SUMMARY_HTML = 20_000
MAX_TITLE = 500
# Raw HTML beyond this is never needed to fill MAX_SUMMARY_HTML; it bounds nh3's work on huge posts.
_MAX_HTML_INPUT = 10 * MAX_SUMMARY_HTML

# Runs of white space, folded to one space in text, titles, author names and story keys.
SPACE = re.compile(r"\s+")
# Invisible characters that change how text reads without showing: bidi embeddings, overrides and
# isolates (a title "\u202egnp.exe" shows as "exe.png"), zero-width spaces and joiners, the BOM, and C0/C1
# controls other than white space. Dropped from every title, summary and author (issue 14, finding 12).
INVISIBLE = re.compile(
    "[\u0000-\u0008\u000b\u000e-\u001f\u007f-\u0084\u0086-\u009f\u061c\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]"
)

# A space before each block tag keeps "<li>one</li><li>two</li>" from becoming "onetwo" once tags go.
_BLOCK_TAG = re.compile(
    r"<(?=/?(?:p|br|div|li|dd|dt|h[1-6]|tr|td|th|table|blockquote|pre|ul|ol|hr|section|article|figure)\b)",
    re.IGNORECASE,
)
# The same for the block tags the safe subset drops (kept ones stay blocks and need no space).
_DROPPED_BLOCK_TAG = re.compile(
    r"<(?=/?(?:div|dd|dt|h[156]|tr|td|th|table|hr|section|article|figure)\b)", re.IGNORECASE
)
_SAFE_TAGS = frozenset(
    {
        "p",
        "br",
        "a",
        "em",
        "strong",
        "b",
        "i",
        "code",
        "pre",
        "ul",
        "ol",
        "li",
        "blockquote",
        "h2",
        "h3",
        "h4",
    }
)
# Dropped with their content: code, and fallbacks (iframe/noscript text) that would read as stray prose.
_DROP_WITH_CONTENT = frozenset({"script", "style", "template", "iframe", "noscript", "object", "svg", "math"})
_TEXT_ONLY = nh3.Cleaner(tags=set(), clean_content_tags=_DROP_WITH_CONTENT, attributes={})


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment: tags and scripts dropped, entities decoded, white space folded."""
    text = html.unescape(_TEXT_ONLY.clean(_BLOCK_TAG.sub(" <", markup)))
    return SPACE.sub(" ", INVISIBLE.sub("", text)).strip()


def safe_html(markup: str, base: str) -> str:
    """``markup`` reduced to the safe subset, links absolute, about MAX_SUMMARY_HTML long."""
    cleaner = nh3.Cleaner(
        tags=_SAFE_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes={"a": {"href"}, "*": set()},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        url_relative=("rewrite_with_base", base),
    )
    # Spaces go in before tags like <div> and <h1> are dropped, so their words stay apart.
    cleaned = cleaner.clean(_DROPPED_BLOCK_TAG.sub(" <", INVISIBLE.sub("", markup[:_MAX_HTML_INPUT])))
    if len(cleaned) > MAX_SUMMARY_HTML:
        # Cleaning the cut-off text again closes the tags the cut left open.
        cleaned = cleaner.clean(cleaned[:MAX_SUMMARY_HTML])
    return cleaned.strip()


def plain_text(value: str, *, markup: bool | None = None) -> str:
    """Plain text of a title; ``markup=None`` guesses from "<" and "&"."""
    is_html = ("<" in value or "&" in value) if markup is None else markup
    text = html_to_text(value) if is_html else SPACE.sub(" ", INVISIBLE.sub("", value)).strip()
    return clip(text, MAX_TITLE)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
