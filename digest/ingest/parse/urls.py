"""URLs as the digest compares them: canonical links and the story key shared by copies of one story."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urljoin, urlsplit, urlunsplit

from digest.ingest.parse.html import SPACE

_TRACKING_NAMES = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "ref",
        "ref_src",
        "ref_url",
        "referrer",
        "_hsenc",
        "_hsmi",
        "guccounter",
        "__twitter_impression",
    }
)
# Medium marks the feed a link came from (``?source=rss------pytorch-5``); other ``source`` values may mean
# something to the site, so only these are dropped.
_TRACKING_VALUE_PREFIXES = {"source": "rss"}
# AMP copies of a page (issue 16): ``/amp`` or ``/amp/`` at either end of the path, ``.amp`` before the
# extension, and ``amp``/``outputType=amp`` in the query all name the same story as the page itself.
_AMP_PATH = re.compile(r"(?:^/amp(?=/)|/amp/?$|\.amp(?=\.html?$))", re.IGNORECASE)
_AMP_QUERY = frozenset({"amp", "amp=1", "amp=true", "outputtype=amp"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str, base: str) -> str | None:
    """``url`` resolved against ``base`` and normalised (RFC 3986 §6.2.2–6.2.3); None unless http(s).

    Scheme and host are lower-cased, the default port, the fragment and tracking parameters dropped;
    other query parameters stay, in order, as written.
    """
    if not url.strip():
        return None
    try:
        parts = urlsplit(urljoin(base, url.strip()))
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", _strip_tracking(parts.query), ""))


def story_key(url: str | None, title: str) -> str:
    """The key shared by copies of one story in several feeds: its URL without tracking noise, else title.

    Scheme, ``www.``, a trailing slash and AMP variants do not count: ``http://www.example.com/a/amp/``
    and ``https://example.com/a`` are one story.
    """
    if url:
        parts = urlsplit(url)
        host = (parts.hostname or "").removeprefix("www.").removeprefix("amp.")
        path = _AMP_PATH.sub("", parts.path).rstrip("/")
        query = "&".join(
            p for p in _strip_tracking(parts.query).split("&") if p and p.lower() not in _AMP_QUERY
        )
        basis = urlunsplit(("", host, path, query, ""))
    else:
        basis = SPACE.sub(" ", title.casefold()).strip()
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def _strip_tracking(query: str) -> str:
    return "&".join(p for p in query.split("&") if p and not _is_tracking(*p.partition("=")[::2]))


def _is_tracking(name: str, value: str) -> bool:
    name = name.lower()
    prefix = _TRACKING_VALUE_PREFIXES.get(name)
    return (
        name.startswith("utm_")
        or name in _TRACKING_NAMES
        or (prefix is not None and value.lower().startswith(prefix))
    )
