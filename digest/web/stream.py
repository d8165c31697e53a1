"""The stream API: one skill's items as JSON pages, as Atom 1.0 and as JSON Feed 1.1; rate-limited.

    GET /api/skills/{skill}/items?since=CURSOR&limit=N   JSON pages with signed cursors (``digest.stream``)
    GET /skills/{slug}/feed.atom                         RFC 4287, the newest items
    GET /skills/{slug}/feed.json                         JSON Feed 1.1, the same items

Every route counts a request per API key (``Authorization: Bearer`` or ``X-API-Key``) or, without one,
per client IP; past the limit it answers 429 with ``Retry-After``. A key that is unknown or revoked is 401
rather than a silent fall back to the IP limit, so a script learns at once that its key is wrong. The
feeds carry ETag and Last-Modified and answer conditional GETs with 304 (RFC 9110 §13).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from digest.db import transaction
from digest.ops import apikeys
from digest.site import stream
from digest.web import security
from digest.web.context import Web

ATOM = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
JSON_FEED_TYPE = "application/feed+json"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
FEED_ITEMS = 50
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
# An empty feed still needs an ``updated`` time (RFC 4287 §4.1.1); a fixed one keeps its ETag stable.
EMPTY_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)

STREAM_DESCRIPTION = """\
The items tagged with a skill, newest first, in pages that have no gaps or repeats while items arrive.

* **First page**: no `since`. `items` are the newest, newest first. `next` is a cursor for the following
  (older) page, `null` after the last one. `head` is a cursor for what arrives after this page.
* **Older pages**: `since=<next>` from the previous page.
* **New items**: `since=<head>` from a first page answers the items that arrived after it, **oldest
  first**, and its `next` continues from the last one (it stays the same when nothing arrived). Keep
  polling with the latest `next`; fewer than `limit` items means you have caught up.

Cursors are opaque and signed: pass them back unchanged (an altered one is 400). Items appear a few
minutes after they are stored, once no earlier item can still arrive, which is what makes polling exact.

Rate limit per minute: per API key (`Authorization: Bearer <key>` or `X-API-Key`), else per IP (lower);
past it, 429 with `Retry-After` in seconds. An unknown or revoked key is 401.
"""

_bearer = HTTPBearer(auto_error=False, description="an API key from `digest apikeys create`")
_header_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="the same API key, for clients that cannot send Bearer"
)


class SkillOut(BaseModel):
    """The skill of a stream (a merged skill's id answers its target)."""

    id: str
    name: str
    slug: str


class TagOut(BaseModel):
    """A skill an item is tagged with, and why."""

    skill_id: str
    name: str
    matched: list[str] = Field(description="the texts that matched")
    in_title: bool
    score: float


class SourceOut(BaseModel):
    """The feed an item came from."""

    id: int
    name: str
    kind: str = Field(description="news, blog or paper")


class ItemOut(BaseModel):
    """One item with its source and every tag it has (not only the stream's skill)."""

    id: int
    title: str
    url: str | None
    summary: str
    authors: list[str]
    published_at: datetime
    ingested_at: datetime = Field(description="when it was first stored: the order of the stream")
    source: SourceOut
    tags: list[TagOut]


class StreamOut(BaseModel):
    """One page of a skill's stream."""

    skill: SkillOut
    items: list[ItemOut]
    next: str | None = Field(description="cursor for the following page; null: no older items")
    head: str | None = Field(description="first page only: cursor to poll for items newer than this page")


def router(web: Web) -> APIRouter:
    """The routes of this module, each behind the per-key or per-IP rate limit."""
    settings = web.settings

    def limited(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_header_key)],
    ) -> None:
        """Authenticate the key if one is sent, then count the request against its key or IP."""
        now = web.clock()
        key = bearer.credentials if bearer else header_key
        try:
            if key:
                with transaction(web.rt.sessions) as session:
                    caller = apikeys.authenticate(session, key, now)
                bucket, limit = f"api-key:{caller.id}", settings.api_rate_key
            else:
                bucket, limit = f"api-ip:{security.client_ip(request)}", settings.api_rate_ip
            # The runtime's one limiter (Redis when the broker is Redis, else the database); it is built
            # and closed with the signups that were its first user.
            apikeys.throttle(web.rt.signups.limiter, bucket, limit, now)
        except apikeys.InvalidKeyError as exc:
            # RFC 6750 §3: a refused bearer credential names the scheme to use.
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        except apikeys.RateLimitedError as exc:
            raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None

    routes = APIRouter(
        tags=["stream"],
        dependencies=[Depends(limited)],
        responses={
            401: {"description": "the API key is unknown or revoked"},
            404: {"description": "no such skill"},
            429: {"description": "past the rate limit: wait `Retry-After` seconds"},
        },
    )

    @routes.get(
        "/api/skills/{skill}/items",
        description=STREAM_DESCRIPTION,
        responses={400: {"description": "the cursor is malformed, altered or another skill's"}},
    )
    def items(
        skill: Annotated[str, Path(description="skill id or slug; a merged id resolves")],
        since: Annotated[str | None, Query(description="a `next` or `head` cursor")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> StreamOut:
        """A page of a skill's items with their tags and sources."""
        secret = settings.secret_key
        cursor = stream.decode_cursor(secret, since) if since is not None else None
        with transaction(web.rt.sessions) as session:
            page = stream.read_page(session, stream.find_skill(session, skill), cursor, limit, web.clock())
        return StreamOut(
            skill=SkillOut(id=page.skill.id, name=page.skill.name, slug=page.skill.slug),
            items=[_item_out(item) for item in page.items],
            next=stream.encode_cursor(secret, page.next) if page.next else None,
            head=stream.encode_cursor(secret, page.head) if page.head else None,
        )

    def newest(slug: str) -> stream.Page:
        with transaction(web.rt.sessions) as session:
            return stream.read_page(session, stream.find_skill(session, slug), None, FEED_ITEMS, web.clock())

    @routes.get("/skills/{slug}/feed.atom", response_class=Response)
    def atom(request: Request, slug: str) -> Response:
        """The newest items of a skill as an Atom 1.0 feed."""
        page = newest(slug)
        links = _Links(settings.base_url, page.skill.slug)
        return _conditional(request, _atom(page, links), ATOM_TYPE, _last_modified(page))

    @routes.get("/skills/{slug}/feed.json", response_class=Response)
    def json_feed(request: Request, slug: str) -> Response:
        """The newest items of a skill as a JSON Feed 1.1."""
        page = newest(slug)
        links = _Links(settings.base_url, page.skill.slug)
        return _conditional(request, _json_feed(page, links), JSON_FEED_TYPE, _last_modified(page))

    return routes


class _Links:
    """The public URLs of one skill's page and feeds, and stable ids for its entries."""

    def __init__(self, base_url: str, slug: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.page = f"{self.base_url}/skills/{slug}"
        self.atom = f"{self.page}/feed.atom"
        self.json = f"{self.page}/feed.json"

    def entry_id(self, item_id: int) -> str:
        # A URN from the site and the item, so the same item has the same id in every skill's feed and
        # a reader that follows two skills shows it once (RFC 4287 §4.2.6: ids never change).
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{self.base_url}/items/{item_id}").urn

    def feed_id(self) -> str:
        return uuid.uuid5(uuid.NAMESPACE_URL, self.page).urn


def _item_out(item: stream.StreamItem) -> ItemOut:
    return ItemOut(
        id=item.id,
        title=item.title,
        url=item.url,
        summary=item.summary,
        authors=list(item.authors),
        published_at=item.published_at,
        ingested_at=item.ingested_at,
        source=SourceOut(id=item.source_id, name=item.source_name, kind=item.source_kind),
        tags=[
            TagOut(
                skill_id=tag.skill_id,
                name=tag.name,
                matched=list(tag.matched),
                in_title=tag.in_title,
                score=tag.score,
            )
            for tag in item.tags
        ],
    )


def _last_modified(page: stream.Page) -> datetime | None:
    return max((max(item.updated_at, item.ingested_at) for item in page.items), default=None)


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _atom(page: stream.Page, links: _Links) -> bytes:
    """RFC 4287. ElementTree escapes every text and attribute, whatever a feed put in a title."""

    def add(parent: ET.Element, name: str, text: str | None = None, **attributes: str) -> ET.Element:
        element = ET.SubElement(parent, name, attributes)
        element.text = text
        return element

    # Unprefixed names under a default namespace declared once: how every Atom reader expects it.
    feed = ET.Element("feed", xmlns=ATOM)
    add(feed, "id", links.feed_id())
    add(feed, "title", f"{page.skill.name} — digest")
    add(feed, "updated", _rfc3339(_last_modified(page) or EMPTY_UPDATED))
    add(feed, "link", rel="self", type=ATOM_TYPE, href=links.atom)
    add(feed, "link", rel="alternate", type="text/html", href=links.page)
    # A feed-level author satisfies §4.1.1 for entries whose source named nobody.
    add(add(feed, "author"), "name", "digest")
    for item in page.items:
        entry = add(feed, "entry")
        add(entry, "id", links.entry_id(item.id))
        add(entry, "title", item.title, type="text")
        add(entry, "updated", _rfc3339(item.updated_at))
        add(entry, "published", _rfc3339(item.published_at))
        for name in item.authors:
            add(add(entry, "author"), "name", name)
        add(entry, "summary", item.summary, type="text")
        if item.url:
            add(entry, "link", rel="alternate", href=item.url)
        else:
            # §4.1.1.1: an entry without an alternate link must carry content.
            add(entry, "content", item.summary, type="text")
        for tag in item.tags:
            add(entry, "category", term=tag.skill_id, label=tag.name)
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def _json_feed(page: stream.Page, links: _Links) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    items: list[dict[str, Any]] = []
    for item in page.items:
        entry: dict[str, Any] = {
            "id": links.entry_id(item.id),
            "title": item.title,
            "content_text": item.summary,
            "date_published": _rfc3339(item.published_at),
            "date_modified": _rfc3339(item.updated_at),
            "tags": [tag.name for tag in item.tags],
        }
        if item.url:
            entry["url"] = item.url
        if item.authors:
            entry["authors"] = [{"name": name} for name in item.authors]
        items.append(entry)
    document = {
        "version": JSON_FEED_VERSION,
        "title": f"{page.skill.name} — digest",
        "home_page_url": links.page,
        "feed_url": links.json,
        "description": f"New items that mention {page.skill.name}, newest first.",
        "items": items,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _conditional(request: Request, body: bytes, media_type: str, last_modified: datetime | None) -> Response:
    """``body`` with validators, or 304 when the client's copy is current (RFC 9110 §13.1)."""
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": etag}
    if last_modified is not None:
        headers["Last-Modified"] = format_datetime(last_modified.astimezone(UTC), usegmt=True)
    if _fresh(request, etag, last_modified):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _fresh(request: Request, etag: str, last_modified: datetime | None) -> bool:
    # §13.2.2: If-None-Match wins; If-Modified-Since counts only when there is none.
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return _matches(etag, (tag.strip() for tag in if_none_match.split(",")))
    since = request.headers.get("if-modified-since")
    if since is None or last_modified is None:
        return False
    try:
        seen = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if seen.tzinfo is None:
        return False
    # HTTP dates have whole seconds, so the stored time is compared at that precision.
    return last_modified.replace(microsecond=0) <= seen


def _matches(etag: str, candidates: Iterable[str]) -> bool:
    # Weak comparison (§8.8.3.2), as If-None-Match asks: W/ does not matter.
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in candidates)
