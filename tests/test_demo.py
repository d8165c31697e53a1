"""`digest demo` end to end, as a user runs it: a subprocess on a fresh DIGEST_HOME, twice."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def run_demo(home: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"DIGEST_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", "demo", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
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
    assert [feed["status"] for feed in second["feeds"]] == ["not-modified"] * 5  # type: ignore[union-attr]
    assert len(outbox(home)) == 3
