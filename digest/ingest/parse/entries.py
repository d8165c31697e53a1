"""The one entry builder both adapters feed, and the field readers they share."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from digest.ingest.parse.html import INVISIBLE, SPACE, clip, html_to_text, safe_html
from digest.records import ParsedEntry

MAX_SUMMARY = 1200

# feedparser leaves "Name (mailto:" of RSS 1.0's "Name (mailto:a@b)" creators.
_NAME_NOISE = re.compile(r"\s*\((?:mailto:)?\)?$", re.IGNORECASE)
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
_DOI_PREFIX = re.compile(r"doi:\s*|https?://(?:dx\.)?doi\.org/", re.IGNORECASE)
_DOI = re.compile(r"10\.\d{4,9}/\S+")


def build_entry(
    *,
    raw_id: str | None,
    url: str | None,
    title: str,
    body_html: str,
    html_base: str,
    authors: tuple[str, ...],
    published_at: datetime | None,
    language: str | None,
    external_id: str | None,
    category: str | None = None,
    discussion_url: str | None = None,
) -> ParsedEntry:
    summary_html = safe_html(body_html, html_base) if body_html else ""
    summary = clip(html_to_text(summary_html), MAX_SUMMARY)
    key_id = raw_id.strip() if raw_id else ""
    basis = (
        key_id or url or f"{title}\x00{published_at.isoformat() if published_at else ''}\x00{summary[:200]}"
    )
    return ParsedEntry(
        entry_key=hashlib.sha256(basis.encode()).hexdigest()[:40],
        url=url,
        title=title or clip(summary, 81) or "(untitled)",
        summary=summary,
        summary_html=summary_html,
        authors=authors,
        published_at=published_at,
        language=language,
        external_id=external_id,
        category=category,
        discussion_url=discussion_url if discussion_url != url else None,
    )


def author_names(people: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    names = (
        _NAME_NOISE.sub("", SPACE.sub(" ", INVISIBLE.sub("", str(person.get("name") or ""))).strip())
        for person in people
    )
    return tuple(dict.fromkeys(name for name in names if name))


def language_tag(value: object) -> str | None:
    """``en-US`` and ``en_us`` become ``en-us``; anything that is no language tag becomes None."""
    if not isinstance(value, str):
        return None
    tag = value.strip().replace("_", "-").lower()
    return tag if _LANGUAGE.fullmatch(tag) else None


def find_doi(value: object, *, bare: bool) -> str | None:
    """A DOI from ``doi:10.…`` or a doi.org link; a bare ``10.…`` only where the element means DOI."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    prefix = _DOI_PREFIX.match(text)
    if not prefix and not bare:
        return None
    doi = unquote(text[prefix.end() :] if prefix else text).lower()
    return doi if _DOI.fullmatch(doi) else None


def unique_entries(entries: Iterable[ParsedEntry]) -> list[ParsedEntry]:
    """Feeds repeat entries; the first copy wins."""
    seen: dict[str, ParsedEntry] = {}
    for entry in entries:
        seen.setdefault(entry.entry_key, entry)
    return list(seen.values())
