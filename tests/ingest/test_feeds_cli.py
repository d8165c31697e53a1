"""`digest feeds ...` as an operator uses it: autodiscovery, OPML round trip, pause, resume, remove."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.ingest.opml import OpmlFeed, parse_opml, write_opml
from tests.support import FeedServer, Route, digest_here, feed_server, rss

pytestmark = pytest.mark.slow
PAGE = b"""<!doctype html><html><head><title>A blog</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="Posts" href="/feed.xml">
</head><body><p>Hello</p></body></html>"""


def digest(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return digest_here({"DIGEST_HOME": str(home)}, *args)


def run_json(home: Path, *args: str) -> object:
    done = digest(home, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def home(tmp_path: Path, upgraded_home: Path) -> Path:
    return Path(shutil.copytree(upgraded_home, tmp_path / "home"))


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        running.routes["/feed.xml"] = Route(rss(("f1", "Go 1.26 and Kubernetes", "")))
        running.routes["/"] = Route(PAGE, headers={"Content-Type": "text/html"})
        running.routes["/plain"] = Route(b"<html><head></head><body>no feeds</body></html>")
        running.routes["/other.xml"] = Route(rss(("o1", "Rust notes", "")))
        yield running


def test_a_web_page_is_answered_by_the_feed_it_links_to(home: Path, server: FeedServer) -> None:
    added = run_json(home, "feeds", "add", server.url("/"), "--kind", "blog")

    assert isinstance(added, dict)
    assert added["url"] == server.url("/feed.xml")
    assert added["name"] == "Test"


def test_a_page_without_a_feed_is_refused_in_one_line(home: Path, server: FeedServer) -> None:
    done = digest(home, "feeds", "add", server.url("/plain"))

    assert done.returncode == 1
    assert "no feed at" in done.stderr and "Traceback" not in done.stderr


def test_opml_import_adds_new_feeds_and_export_gives_them_back(
    home: Path, server: FeedServer, tmp_path: Path
) -> None:
    run_json(home, "feeds", "add", server.url("/feed.xml"), "--kind", "news")
    opml = tmp_path / "in.opml"
    opml.write_bytes(
        write_opml(
            [
                OpmlFeed(server.url("/feed.xml"), "Known", "news", None, None),
                OpmlFeed(server.url("/other.xml"), "Other", "paper", 7200, None),
                OpmlFeed("https://example.org/no-kind.xml", "No kind", None, None, None),
            ],
            title="t",
            created=datetime(2026, 11, 1, tzinfo=UTC),
        )
    )

    imported = run_json(home, "feeds", "import", str(opml), "--kind", "blog")
    exported = parse_opml(digest(home, "feeds", "export").stdout.encode())

    assert isinstance(imported, dict)
    assert imported["added"] == [server.url("/other.xml"), "https://example.org/no-kind.xml"]
    assert imported["known"] == [server.url("/feed.xml")]
    assert [(f.url, f.kind, f.interval_seconds) for f in exported.feeds] == [
        (server.url("/feed.xml"), "news", None),
        (server.url("/other.xml"), "paper", 7200),
        ("https://example.org/no-kind.xml", "blog", None),
    ]


def test_a_paused_feed_is_not_crawled_until_resumed_and_a_removed_one_is_gone(
    home: Path, server: FeedServer
) -> None:
    feed = run_json(home, "feeds", "add", server.url("/feed.xml"))
    assert isinstance(feed, dict)
    feed_id = str(feed["id"])

    paused = run_json(home, "feeds", "pause", feed_id)
    crawled_while_paused = run_json(home, "crawl", "--all")
    resumed = run_json(home, "feeds", "resume", feed_id)
    crawled = run_json(home, "crawl")
    listed = run_json(home, "feeds", "list")
    removed = run_json(home, "feeds", "remove", feed_id)

    assert isinstance(paused, dict) and paused["state"] == "paused"
    assert isinstance(crawled_while_paused, dict) and crawled_while_paused["feeds"] == []
    assert isinstance(resumed, dict) and resumed["state"] == "active"
    assert isinstance(crawled, dict) and crawled["totals"]["new"] == 1
    assert isinstance(listed, list)
    assert {
        "kind",
        "interval",
        "last_status",
        "last_error",
        "consecutive_failures",
        "next_fetch",
        "items",
    } <= set(listed[0])
    assert listed[0]["items"] == 1 and listed[0]["last_status"] == "ok"
    assert isinstance(removed, dict) and removed["id"] == feed["id"]
    assert run_json(home, "feeds", "list") == []
    missing = digest(home, "feeds", "pause", feed_id)
    assert missing.returncode == 1 and "no feed with id" in missing.stderr
