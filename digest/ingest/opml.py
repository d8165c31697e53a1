"""OPML subscription lists in and out (issue 3). Pure: bytes in, records out; no database, no network.

    parse_opml(bytes) -> OpmlResult(feeds, skipped, warnings)      # digest feeds import FILE.opml
    write_opml(feeds, title=..., created=...) -> bytes             # digest feeds export

OPML 2.0 is http://opml.org/spec2.opml; 1.0 and 1.1 files read the same way for subscription lists.
Our own settings ride in plain attributes, ``digestKind`` and ``digestEvery``: a namespaced attribute
such as ``digest:kind`` needs an ``xmlns`` declaration that other readers drop or mangle on re-export,
while unknown plain attributes are kept or ignored by every reader we know of.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # builds and writes only; every parse goes through defusedxml
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import cast
from urllib.parse import urlsplit

import defusedxml  # type: ignore[import-untyped]  # defusedxml 0.7 ships no type information
import defusedxml.ElementTree as SafeET  # type: ignore[import-untyped]

from digest.errors import InvalidInputError
from digest.ingest.sources import check_feed_url
from digest.vocabulary import SOURCE_KINDS

KIND_ATTRIBUTE = "digestKind"
INTERVAL_ATTRIBUTE = "digestEvery"

# A subscription list of 50,000 feeds is ~10 MB; anything bigger is not one, and refusing it early
# keeps a mistaken `import` of a data dump from building a huge tree in memory.
MAX_OPML_BYTES = 16 * 1024 * 1024

# XML 1.0 §2.2 Char: anything else (most C0 controls, lone surrogates, U+FFFE/U+FFFF) makes the
# document unreadable, so a feed title carrying one must lose it rather than break the whole export.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One feed of a subscription list; ``None`` means the list did not say (the caller defaults it)."""

    url: str
    name: str
    kind: str | None
    interval_seconds: int | None
    site_url: str | None


@dataclass(frozen=True, slots=True)
class OpmlResult:
    """What an OPML file held: usable feeds in document order, and a readable line per problem.

    ``skipped`` names outlines that were not imported; ``warnings`` names feeds that were imported
    with one of their settings dropped (an unknown kind, an interval that is not whole seconds).
    """

    feeds: tuple[OpmlFeed, ...]
    skipped: tuple[str, ...]
    warnings: tuple[str, ...]


def parse_opml(content: bytes) -> OpmlResult:
    """Read the feeds of an OPML 1.0/1.1/2.0 subscription list, walking nested folders.

    Raises ``InvalidInputError`` ("not an OPML file: ...") for anything that is not well-formed OPML,
    including documents that declare entities: they are refused, never expanded or fetched.
    """
    body = _body_of(_parse_xml(content))
    feeds: list[OpmlFeed] = []
    skipped: list[str] = []
    warnings: list[str] = []
    first_name_by_url: dict[str, str] = {}
    # iter() walks the whole subtree in document order without recursion, so deep folders are fine.
    for outline in body.iter("outline"):
        attributes = _attributes(outline)
        raw_url = attributes.get("xmlurl", "").strip()
        if not raw_url:
            if outline.find("outline") is None:  # a folder is walked, not reported
                skipped.append(f"{_label(attributes)}: no xmlUrl, so not a feed")
            continue
        try:
            url = check_feed_url(raw_url)
        except InvalidInputError as error:
            skipped.append(f"{_label(attributes)}: {error}")
            continue
        name = _name(attributes, url)
        if url in first_name_by_url:
            skipped.append(f"{name!r}: duplicate of {url} (first listed as {first_name_by_url[url]!r})")
            continue
        first_name_by_url[url] = name
        feeds.append(_feed(url, name, attributes, warnings))
    return OpmlResult(feeds=tuple(feeds), skipped=tuple(skipped), warnings=tuple(warnings))


def write_opml(feeds: Iterable[OpmlFeed], *, title: str, created: datetime) -> bytes:
    """An OPML 2.0 document (UTF-8) listing ``feeds`` in the order given.

    The same arguments always give the same bytes; ``created`` must be timezone-aware and is written
    in UTC as RFC 822 requires for ``dateCreated``.
    """
    if created.tzinfo is None:
        raise ValueError("created must be timezone-aware")
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = _xml_text(title)
    ET.SubElement(head, "dateCreated").text = format_datetime(created.astimezone(UTC), usegmt=True)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        ET.SubElement(body, "outline", _outline_attributes(feed))
    ET.indent(root, space="  ")
    # typeshed types tostring() as Any for byte encodings; it returns bytes. The declaration is written
    # here because ElementTree's own uses single quotes and a lower-case encoding name.
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + document + b"\n"


def _parse_xml(content: bytes) -> ET.Element:
    """The root element, or ``InvalidInputError`` with one readable line."""
    if len(content) > MAX_OPML_BYTES:
        raise InvalidInputError(f"not an OPML file: {len(content):,} bytes is more than a subscription list")
    try:
        # forbid_entities (the default) refuses every <!ENTITY>: billion-laughs bombs and
        # SYSTEM entities that would read local files or URLs fail before anything expands.
        root = SafeET.fromstring(content, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.EntitiesForbidden as error:
        raise InvalidInputError(
            f"not an OPML file: it declares the entity {error.name!r}, and entities are refused"
        ) from None
    except defusedxml.DefusedXmlException as error:
        raise InvalidInputError(f"not an OPML file: refused unsafe XML ({type(error).__name__})") from None
    except ET.ParseError as error:
        raise InvalidInputError(f"not an OPML file: {error}") from None
    return cast(ET.Element, root)


def _body_of(root: ET.Element) -> ET.Element:
    if root.tag != "opml":
        raise InvalidInputError(f"not an OPML file: the root element is <{root.tag}>, not <opml>")
    body = root.find("body")
    if body is None:
        raise InvalidInputError("not an OPML file: it has no <body>")
    return body


def _attributes(outline: ET.Element) -> dict[str, str]:
    # Attribute names are case-sensitive in XML, but exporters write `xmlurl` and `XMLURL` as well as
    # the spec's `xmlUrl`; matching without case loses nothing because no two OPML names differ by case.
    return {key.lower(): value for key, value in outline.attrib.items()}


def _label(attributes: Mapping[str, str]) -> str:
    """How a skipped outline is named in its reason: its name, else its URL, else nothing useful."""
    name = (attributes.get("text") or attributes.get("title") or "").strip()
    if name:
        return repr(name)
    url = attributes.get("xmlurl", "").strip()
    return f"outline {url!r}" if url else "an untitled outline"


def _name(attributes: Mapping[str, str], url: str) -> str:
    # OPML 2.0 makes `text` the displayed name; `title` is what some 1.0 exporters write instead.
    name = (attributes.get("text") or "").strip() or (attributes.get("title") or "").strip()
    return name or (urlsplit(url).hostname or url)


def _feed(url: str, name: str, attributes: Mapping[str, str], warnings: list[str]) -> OpmlFeed:
    return OpmlFeed(
        url=url,
        name=name,
        kind=_kind(attributes.get(KIND_ATTRIBUTE.lower()), name, warnings),
        interval_seconds=_interval(attributes.get(INTERVAL_ATTRIBUTE.lower()), name, warnings),
        site_url=_site_url(attributes.get("htmlurl"), name, warnings),
    )


def _kind(value: str | None, name: str, warnings: list[str]) -> str | None:
    # An unknown kind must not lose the feed: the caller applies its default kind instead.
    if value is None or not value.strip():
        return None
    kind = value.strip().lower()
    if kind in SOURCE_KINDS:
        return kind
    warnings.append(
        f"{name!r}: unknown {KIND_ATTRIBUTE} {value!r} ignored (use one of {', '.join(SOURCE_KINDS)})"
    )
    return None


def _interval(value: str | None, name: str, warnings: list[str]) -> int | None:
    # Only whole positive seconds; the caller clamps to its own limits (vocabulary.interval_for).
    if value is None or not value.strip():
        return None
    text = value.strip()
    # isascii() first: isdigit() accepts digits like '²' that int() then refuses.
    if text.isascii() and text.isdigit() and len(text) <= 9 and int(text) > 0:
        return int(text)
    warnings.append(f"{name!r}: {INTERVAL_ATTRIBUTE} {value!r} ignored (want whole seconds, above 0)")
    return None


def _site_url(value: str | None, name: str, warnings: list[str]) -> str | None:
    # The site link ends up in digests and web pages, so only http(s) is kept (no javascript: links).
    if value is None or not value.strip():
        return None
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() in ("http", "https") and parts.hostname:
        return url
    warnings.append(f"{name!r}: htmlUrl {value!r} ignored (only http:// and https:// links are kept)")
    return None


def _outline_attributes(feed: OpmlFeed) -> dict[str, str]:
    """A feed's outline attributes in a fixed order; unknown settings are left out, not written empty."""
    name = _xml_text(feed.name)
    attributes = {"type": "rss", "text": name, "title": name, "xmlUrl": _xml_text(feed.url)}
    if feed.site_url is not None:
        attributes["htmlUrl"] = _xml_text(feed.site_url)
    if feed.kind is not None:
        attributes[KIND_ATTRIBUTE] = feed.kind
    if feed.interval_seconds is not None:
        attributes[INTERVAL_ATTRIBUTE] = str(feed.interval_seconds)
    return attributes


def _xml_text(text: str) -> str:
    return _NOT_XML_CHAR.sub("", text)
