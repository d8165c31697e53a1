"""The stream API: signed cursors, pages without gaps or repeats while items arrive, Atom and JSON Feed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any
from xml.etree import ElementTree as ET

import feedparser
import httpx
import jsonschema
import pytest

from digest.config import Settings
from digest.db import transaction
from digest.errors import InvalidInputError
from digest.ingest.parse import parse_feed
from digest.ingest.skills import resolve_skill
from digest.ingest.taxonomy import merge
from digest.models import Item, Skill, Source, Tag
from digest.runtime import Runtime
from digest.site.stream import SETTLE, Cursor, decode_cursor, encode_cursor
from digest.web import create_app
from tests.conftest import DATA
from tests.web_support import serve

ATOM = "{http://www.w3.org/2005/Atom}"
SECRET = "test-secret"


@dataclass
class Clock:
    """The app's clock, moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@dataclass
class World:
    """Items and tags written straight into the database, stamped as a crawl would stamp them."""

    rt: Runtime
    sources: dict[str, int] = field(default_factory=dict)
    stored: int = 0

    def skill(self, name: str) -> str:
        with transaction(self.rt.sessions) as session:
            return resolve_skill(session, name).id

    def source(self, name: str, at: datetime) -> int:
        if name not in self.sources:
            with transaction(self.rt.sessions) as session:
                row = Source(
                    url=f"https://{name}.example.com/feed",
                    name=name,
                    kind="blog",
                    next_fetch_at=at,
                    created_at=at,
                )
                session.add(row)
                session.flush()
                self.sources[name] = row.id
        return self.sources[name]

    def batch(
        self,
        at: datetime,
        count: int,
        skills: tuple[str, ...] = ("Python",),
        *,
        source: str = "alpha",
        tagged: int | None = None,
        title: str = "Item {n}",
    ) -> list[int]:
        """``count`` items of one crawl stamped ``at`` in one transaction; the first ``tagged`` (all by
        default) get their tags, the rest wait for the matcher (``tag``)."""
        source_id = self.source(source, at)
        skill_ids = [self.skill(name) for name in skills]
        with transaction(self.rt.sessions) as session:
            rows = []
            for _ in range(count):
                self.stored += 1
                n = self.stored
                rows.append(
                    Item(
                        source_id=source_id,
                        entry_key=f"entry-{n}",
                        story_key=f"story-{n}",
                        url=f"https://{source}.example.com/{n}",
                        title=title.format(n=n),
                        summary=f"About item {n} & <friends>",
                        authors=[f"Author {n}"],
                        published_at=at - timedelta(minutes=30),
                        ingested_at=at,
                        updated_at=at,
                        content_hash=f"{n:064x}",
                    )
                )
            session.add_all(rows)
            session.flush()
            ids = [row.id for row in rows]
        self.tag(ids[: count if tagged is None else tagged], skill_ids)
        return ids

    def tag(self, item_ids: list[int], skill_ids: list[str]) -> None:
        """The matcher's transaction: tags copy the item's ``ingested_at``, the item is marked tagged."""
        with transaction(self.rt.sessions) as session:
            for item in session.query(Item).filter(Item.id.in_(item_ids)):
                for rank, skill_id in enumerate(skill_ids):
                    session.add(
                        Tag(
                            item_id=item.id,
                            skill_id=skill_id,
                            ingested_at=item.ingested_at,
                            matched=["python"],
                            count=1,
                            in_title=rank == 0,
                            score=2.0 - rank,
                        )
                    )
                item.tagged_version = "test"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Limits high enough that walking pages never meets them (tests/ops/test_apikeys.py tests them)."""
    return settings.model_copy(update={"api_rate_ip": 10_000})


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def world(rt: Runtime) -> World:
    return World(rt)


@pytest.fixture
def client(rt: Runtime, clock: Clock) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=clock)) as http:
        yield http


def page(client: httpx.Client, skill: str = "python", **params: Any) -> dict[str, Any]:
    response = client.get(f"/api/skills/{skill}/items", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[int]:
    return [item["id"] for item in body["items"]]


def keys(body: dict[str, Any]) -> list[tuple[datetime, int]]:
    return [(datetime.fromisoformat(item["ingested_at"]), item["id"]) for item in body["items"]]


# -- cursors -------------------------------------------------------------------------------------------


def test_a_cursor_comes_back_as_it_went_out(now: datetime) -> None:
    cursor = Cursor("abc123", "older", now.replace(microsecond=123456), 42)

    token = encode_cursor(SECRET, cursor)

    assert decode_cursor(SECRET, token) == cursor
    assert token.isascii() and all(char.isalnum() or char in "-_." for char in token)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:5] + ("A" if token[5] != "A" else "B") + token[6:],  # the position
        lambda token: token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:],  # the signature
        lambda token: token.partition(".")[0],  # no signature
        lambda token: "",
        lambda token: "not a cursor",
        lambda token: token + "%00",
    ],
    ids=["position", "signature", "unsigned", "empty", "garbage", "suffix"],
)
def test_an_altered_or_malformed_cursor_is_refused(now: datetime, tamper: Any) -> None:
    token = encode_cursor(SECRET, Cursor("abc123", "newer", now, 42))

    with pytest.raises(InvalidInputError, match="cursor is not valid"):
        decode_cursor(SECRET, tamper(token))


def test_a_cursor_signed_with_another_key_is_refused(now: datetime) -> None:
    token = encode_cursor("another-secret", Cursor("abc123", "older", now, 42))

    with pytest.raises(InvalidInputError):
        decode_cursor(SECRET, token)


# -- pages ---------------------------------------------------------------------------------------------


def test_walking_every_page_while_items_arrive_gives_each_item_exactly_once(
    client: httpx.Client, world: World, clock: Clock, now: datetime
) -> None:
    # History: crawl batches share one ingested_at, so page boundaries (4 items) fall inside them.
    history = world.batch(now - timedelta(hours=3), 7)
    history += world.batch(now - timedelta(hours=2), 6)
    world.batch(now - timedelta(hours=2), 3, ("Go",))  # another skill at the same time: not this stream
    history += world.batch(now - timedelta(hours=1), 1, ("Go", "Python"))
    arrived: list[int] = []

    first = page(client, limit=4)
    walked, cursor = ids(first), first["next"]
    while cursor:
        # Between page requests, a crawl stores a batch, and a second feed of the same crawl (same
        # ingested_at) commits a minute later.
        stamp = clock.now
        arrived += world.batch(stamp, 3)
        clock.advance(timedelta(minutes=1))
        arrived += world.batch(stamp, 2, source="beta")
        older = page(client, since=cursor, limit=4)
        walked += ids(older)
        cursor = older["next"]

    assert walked == sorted(history, reverse=True)  # newest first, batches in id order, nothing new
    assert len(walked) == len(set(walked))

    # A batch whose tags land in two transactions: the tagged half waits for the other half.
    split = world.batch(clock.now, 4, tagged=2)
    clock.advance(SETTLE + timedelta(minutes=1))
    polled, cursor = [], first["head"]
    while True:
        newer = page(client, since=cursor, limit=4)
        assert keys(newer) == sorted(keys(newer))  # oldest first
        polled += ids(newer)
        cursor = newer["next"]
        if len(newer["items"]) < 4:
            break
    assert not set(split) & set(polled)

    world.tag(split[2:], [world.skill("Python")])
    caught_up = page(client, since=cursor, limit=4)
    assert ids(caught_up) == split
    polled += ids(caught_up)

    assert sorted(walked + polled) == sorted(history + arrived + split)
    assert len(walked + polled) == len(set(walked + polled))


def test_an_item_is_held_back_until_no_earlier_item_can_still_arrive(
    client: httpx.Client, world: World, clock: Clock
) -> None:
    fresh = world.batch(clock.now, 2)

    assert page(client)["items"] == []
    clock.advance(SETTLE - timedelta(seconds=1))
    assert page(client)["items"] == []
    clock.advance(timedelta(seconds=2))
    assert ids(page(client)) == sorted(fresh, reverse=True)


def test_polling_with_nothing_new_keeps_the_same_position(
    client: httpx.Client, world: World, now: datetime
) -> None:
    world.batch(now - timedelta(hours=1), 2)
    head = page(client)["head"]

    quiet = page(client, since=head)

    assert quiet["items"] == [] and quiet["next"] == head and quiet["head"] is None


def test_an_empty_stream_still_gives_a_head_to_poll(
    client: httpx.Client, world: World, clock: Clock, now: datetime
) -> None:
    first = page(client)
    assert first["items"] == [] and first["next"] is None

    later = world.batch(now, 1)
    clock.advance(SETTLE + timedelta(seconds=1))

    assert ids(page(client, since=first["head"])) == later


def test_each_item_carries_its_tags_and_source(client: httpx.Client, world: World, now: datetime) -> None:
    [item_id] = world.batch(now - timedelta(hours=1), 1, ("Python", "Go"), title="Python & Go <together>")

    body = page(client, "Python")

    assert body["skill"] == {"id": world.skill("Python"), "name": "Python", "slug": "python"}
    [item] = body["items"]
    assert item["id"] == item_id and item["title"] == "Python & Go <together>"
    assert item["source"] == {"id": world.sources["alpha"], "name": "alpha", "kind": "blog"}
    assert item["authors"] == [f"Author {world.stored}"]
    assert [(tag["name"], tag["in_title"], tag["score"]) for tag in item["tags"]] == [
        ("Python", True, 2.0),
        ("Go", False, 1.0),
    ]
    assert item["tags"][0] == {
        "skill_id": world.skill("Python"),
        "name": "Python",
        "matched": ["python"],
        "in_title": True,
        "score": 2.0,
    }


def test_a_skill_is_found_by_id_or_slug_and_a_merged_id_answers_its_target(
    client: httpx.Client, rt: Runtime, world: World, now: datetime
) -> None:
    python_items = world.batch(now - timedelta(hours=2), 2, ("Python",))
    go_items = world.batch(now - timedelta(hours=1), 2, ("Go",))
    python, go = world.skill("Python"), world.skill("Go")
    go_cursor = page(client, go, limit=1)["next"]
    with transaction(rt.sessions) as session:
        into, merged = session.get(Skill, python), session.get(Skill, go)
        assert into is not None and merged is not None
        merge(session, merged, into, now)

    by_id, by_slug, by_merged = page(client, python), page(client, "python"), page(client, go)
    # A cursor taken before the merge goes on, now over the survivor's stream.
    resumed = page(client, go, since=go_cursor)

    assert by_id == by_slug
    assert by_merged["skill"]["id"] == python and ids(by_merged) == ids(by_id)
    assert ids(by_id) == sorted(go_items + python_items, reverse=True)
    assert ids(resumed) == ids(by_id)[1:]


def test_an_unknown_skill_is_a_404(client: httpx.Client) -> None:
    response = client.get("/api/skills/no-such-skill/items")

    assert response.status_code == 404 and "no skill called" in response.json()["detail"]


def test_a_tampered_or_foreign_cursor_is_a_400_with_a_json_error(
    client: httpx.Client, world: World, now: datetime
) -> None:
    world.batch(now - timedelta(hours=1), 3)
    world.batch(now - timedelta(hours=1), 3, ("Go",))
    cursor = page(client, limit=2)["next"]
    tampered = cursor[:4] + ("x" if cursor[4] != "x" else "y") + cursor[5:]

    refused = client.get("/api/skills/python/items", params={"since": tampered})
    foreign = client.get("/api/skills/go/items", params={"since": cursor})

    assert refused.status_code == 400 and refused.headers["content-type"] == "application/json"
    assert "cursor is not valid" in refused.json()["detail"]
    assert foreign.status_code == 400 and "another skill" in foreign.json()["detail"]


def test_limit_defaults_to_50_and_takes_1_to_200(client: httpx.Client, world: World, now: datetime) -> None:
    world.batch(now - timedelta(hours=1), 201)

    assert len(page(client)["items"]) == 50
    assert len(page(client, limit=1)["items"]) == 1
    assert len(page(client, limit=200)["items"]) == 200
    for bad in (0, 201, -1):
        response = client.get("/api/skills/python/items", params={"limit": bad})
        assert response.status_code == 422, bad


def test_the_openapi_description_says_how_to_poll(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()

    operation = schema["paths"]["/api/skills/{skill}/items"]["get"]
    assert "since=<head>" in operation["description"] and "oldest" in operation["description"]


# -- feeds ---------------------------------------------------------------------------------------------


def test_the_atom_feed_is_valid_atom_that_feedparser_reads_back(
    client: httpx.Client, rt: Runtime, world: World, now: datetime
) -> None:
    older = world.batch(now - timedelta(hours=2), 1, title="Plain {n}")
    newer = world.batch(now - timedelta(hours=1), 1, ("Python", "Go"), title="Tricky <b>{n}</b> & ]]>")

    response = client.get("/skills/python/feed.atom")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml"
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo and parsed.version == "atom10"
    base = rt.settings.base_url
    assert parsed.feed.title == "Python — digest"
    assert {(link.rel, link.href) for link in parsed.feed.links} == {
        ("self", f"{base}/skills/python/feed.atom"),
        ("alternate", f"{base}/skills/python"),
    }
    assert [entry.link for entry in parsed.entries] == [
        f"https://alpha.example.com/{n}" for n in (world.stored, world.stored - 1)
    ]
    tricky = parsed.entries[0]
    assert tricky.title == f"Tricky <b>{world.stored}</b> & ]]>"
    assert tricky.summary == f"About item {world.stored} & <friends>"
    assert tricky.id.startswith("urn:uuid:") and tricky.id != parsed.entries[1].id
    assert [tag.label for tag in tricky.tags] == ["Python", "Go"]
    assert tricky.updated_parsed[:6] == (now - timedelta(hours=1)).timetuple()[:6]
    # RFC 4287 §4.1.1-4.1.2: the elements a feed and each entry must have, checked on the XML itself.
    root = ET.fromstring(response.content)  # noqa: S314 (our own output, not untrusted input)
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{name}") is not None, name
    for entry in root.findall(f"{ATOM}entry"):
        for name in ("id", "title", "updated", "link"):
            assert entry.find(f"{ATOM}{name}") is not None, name
    assert len(older + newer) == len(parsed.entries)


def test_the_atom_feed_is_read_back_by_our_own_crawler(
    client: httpx.Client, world: World, now: datetime
) -> None:
    world.batch(now - timedelta(hours=1), 2)
    response = client.get("/skills/python/feed.atom")

    parsed = parse_feed(
        response.content, url="http://127.0.0.1/f", content_type=response.headers["content-type"]
    )

    assert [entry.title for entry in parsed.entries] == [f"Item {n}" for n in (2, 1)]


def test_the_json_feed_is_valid_json_feed_1_1(
    client: httpx.Client, rt: Runtime, world: World, now: datetime
) -> None:
    world.batch(now - timedelta(hours=2), 1)
    world.batch(now - timedelta(hours=1), 1, ("Python", "Go"), title='Tricky <b>{n}</b> & "quotes"')

    response = client.get("/skills/python/feed.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/feed+json"
    document = response.json()
    schema = json.loads((DATA / "jsonfeed-1.1.schema.json").read_text())
    jsonschema.validate(document, schema)
    base = rt.settings.base_url
    assert document["home_page_url"] == f"{base}/skills/python"
    assert document["feed_url"] == f"{base}/skills/python/feed.json"
    first = document["items"][0]
    assert first["title"] == 'Tricky <b>2</b> & "quotes"' and first["tags"] == ["Python", "Go"]
    assert (
        first["content_text"] == "About item 2 & <friends>" and first["url"] == "https://alpha.example.com/2"
    )
    parsed = parse_feed(response.content, url="http://127.0.0.1/f", content_type="application/feed+json")
    assert [entry.url for entry in parsed.entries] == [item["url"] for item in document["items"]]


def test_the_json_feed_schema_catches_what_the_spec_forbids() -> None:
    schema = json.loads((DATA / "jsonfeed-1.1.schema.json").read_text())
    good = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "items": [{"id": "1", "content_text": ""}],
    }
    jsonschema.validate(good, schema)

    for bad in (
        {**good, "version": "https://jsonfeed.org/version/1"},
        {**good, "items": [{"id": "1"}]},  # neither content_html nor content_text
        {**good, "items": [{"id": 1, "content_text": ""}]},
        {**good, "items": [{"id": "1", "content_text": "", "date_published": "Mon, 16 Nov 2026"}]},
        {**good, "items": [{"id": "1", "content_text": "", "content-text": ""}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


@pytest.mark.parametrize("suffix", ["atom", "json"])
def test_a_feed_answers_a_conditional_get_with_304_until_it_changes(
    client: httpx.Client, world: World, clock: Clock, now: datetime, suffix: str
) -> None:
    world.batch(now - timedelta(hours=1), 2)
    url = f"/skills/python/feed.{suffix}"
    first = client.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]

    by_etag = client.get(url, headers={"If-None-Match": etag})
    by_date = client.get(url, headers={"If-Modified-Since": modified})
    weak_in_a_list = client.get(url, headers={"If-None-Match": f'"other", W/{etag}'})
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    stale_etag = client.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": modified})

    assert modified == format_datetime(now - timedelta(hours=1), usegmt=True)
    assert by_etag.status_code == by_date.status_code == weak_in_a_list.status_code == 304
    assert by_etag.content == b"" and by_etag.headers["etag"] == etag
    assert stale_etag.status_code == 200

    world.batch(clock.now, 1)
    clock.advance(SETTLE + timedelta(seconds=1))
    changed = client.get(url, headers={"If-None-Match": etag, "If-Modified-Since": modified})

    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 200


def test_a_feed_of_an_unknown_skill_is_a_404(client: httpx.Client) -> None:
    assert client.get("/skills/no-such-skill/feed.atom").status_code == 404
    assert client.get("/skills/no-such-skill/feed.json").status_code == 404


def test_an_empty_feed_is_still_valid(client: httpx.Client) -> None:
    atom = feedparser.parse(client.get("/skills/python/feed.atom").content)
    document = client.get("/skills/python/feed.json").json()

    assert not atom.bozo and atom.entries == []
    jsonschema.validate(document, json.loads((DATA / "jsonfeed-1.1.schema.json").read_text()))
