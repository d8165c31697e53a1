"""`digest demo` end to end, as a user runs it: a subprocess on a fresh DIGEST_HOME, twice."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.ingest.catalog import DEMO_PAUSED
from digest.web import create_app
from tests.web_support import serve

pytestmark = pytest.mark.slow


def demo(home: Path, *options: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"DIGEST_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", "demo", *options],
        env=env | {"COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_demo(home: Path) -> dict[str, object]:
    report = json.loads(demo(home, "--json"))
    assert isinstance(report, dict)
    return report


def outbox(home: Path) -> list[EmailMessage]:
    messages = []
    for path in sorted((home / "outbox" / "new").iterdir()):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def test_the_demo_crawls_tags_and_mails_every_cadence_and_can_run_twice(tmp_path: Path) -> None:
    home = tmp_path / "home"

    first = run_demo(home)
    second = run_demo(home)

    feeds = first["feeds"]
    assert isinstance(feeds, list) and len(feeds) == 5
    assert {feed["kind"] for feed in feeds} == {"news", "blog", "paper"}
    assert all(feed["status"] == "ok" and feed["new"] > 0 for feed in feeds)
    assert isinstance(first["tags"], int) and first["tags"] > 0
    assert first["sent_now"] == 3
    messages = outbox(home)
    assert len(messages) == 3
    cadences = set()
    for message in messages:
        assert message.get_content_type() == "multipart/alternative"
        text, html = message.get_body(("plain",)), message.get_body(("html",))
        assert text is not None and html is not None
        assert "Why:" in text.get_content() and "Why:" in html.get_content()
        # The heading names the cadence ("Your daily digest"); the subject leads with a headline.
        cadences.add(text.get_content().split("\n", 1)[0].split()[1])
    assert cadences == {"hourly", "daily", "weekly"}
    assert Path(str(first["preview"])).read_text().startswith("<!DOCTYPE html>")
    # Fresh means fresh (issue 16): the bundled arXiv answers are years old and stay out of every digest.
    with sqlite3.connect(home / "digest.sqlite3") as db:
        ages = db.execute(
            "SELECT julianday(d.window_start) - julianday(i.published_at) FROM deliveries d"
            " JOIN delivery_items di ON di.delivery_id = d.id JOIN items i ON i.id = di.item_id"
        ).fetchall()
    assert ages and max(age for (age,) in ages) <= 7

    assert second["sent_now"] == 0
    assert second["items"] == first["items"] and second["tags"] == first["tags"]
    # Paused when the first run ended, resumed and fetched again by the second (issue 17).
    assert [feed["status"] for feed in second["feeds"]] == ["not-modified"] * 5  # type: ignore[union-attr]
    assert len(outbox(home)) == 3
    assert demo_feeds(home) == [("paused", DEMO_PAUSED, 0)] * 5


def demo_feeds(home: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(home / "digest.sqlite3") as db:
        return db.execute(
            "SELECT state, disabled_reason, consecutive_failures FROM sources ORDER BY id"
        ).fetchall()


def test_after_the_demo_skill_pages_show_figures_that_agree_with_the_items_listed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    report = run_demo(home)
    busiest = report["busiest_skill"]
    assert isinstance(busiest, dict)

    settings = load_settings(home=home, database_url=f"sqlite:///{home / 'digest.sqlite3'}")
    with serve(create_app(settings)) as http:
        page = http.get(f"/skills/{busiest['slug']}")
        home_page = http.get("/")

    assert page.status_code == 200 and home_page.status_code == 200
    assert "not computed yet" not in page.text and "not computed yet" not in home_page.text
    # Issue 17: never "0 items mentioned Python" above Python items. The count covers the window; the
    # items listed from within it are at most that many.
    total = int(re.search(r"<strong>([\d,]+)</strong> items? mentioned", page.text)[1].replace(",", ""))  # type: ignore[index]
    window_start = date.fromisoformat(re.search(r"window \d+ days \((\S+) to", page.text)[1])  # type: ignore[index]
    listed = [date.fromisoformat(day) for day in re.findall(r"published (\d{4}-\d{2}-\d{2})", page.text)]
    in_window = [day for day in listed if day >= window_start]
    assert in_window and 0 < len(in_window) <= total
    # The demo's feeds are paused when it ends, marked as demo feeds.
    assert demo_feeds(home) == [("paused", DEMO_PAUSED, 0)] * 5


def test_the_demo_ends_with_the_figures_it_counted_and_what_to_try_next(tmp_path: Path) -> None:
    home = tmp_path / "home"

    report = run_demo(home)
    printed = demo(home)

    # Figures counted from the database, consistent with each other (issue 17).
    feeds = report["feeds"]
    assert isinstance(feeds, list) and report["items"] == sum(feed["items"] for feed in feeds)
    skills, busiest = report["skills"], report["busiest_skill"]
    assert isinstance(skills, int) and 0 < skills <= report["tags"]  # type: ignore[operator]
    assert isinstance(busiest, dict) and 0 < busiest["items"] <= report["items"]  # type: ignore[operator]
    assert busiest["url"] == f"http://127.0.0.1:8000/skills/{busiest['slug']}"
    assert report["digests_sent"] == 3
    steps = report["next_steps"]
    assert isinstance(steps, list)
    commands = [step["command"] for step in steps]
    assert commands == ["digest web", "digest feeds list", "digest feeds import --starter", "digest up"]
    assert busiest["url"] in steps[0]["why"]
    # The same, for people, at 80 columns (lines wrapped at spaces joined again to compare).
    words = " ".join(printed.split())
    assert f"{report['items']} items crawled, {skills} skills tagged ({report['tags']} tags)" in words
    assert "3 digests sent" in words
    # A path longer than the line is folded inside itself: compare with every white space taken out.
    assert f"Maildir:{home / 'outbox'}" in "".join(printed.split())
    tail = words[words.index("Next steps") :]
    assert all(command in tail for command in commands) and busiest["url"] in tail
    assert max(len(line) for line in printed.splitlines()) <= 80
