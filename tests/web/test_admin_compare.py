"""Issue 17: the admin's delivery page compares the digest rendered again with what was sent after putting
back the base URL of the day it was sent (DIGEST_BASE_URL may have moved since), and shows a line diff,
escaped, when it really differs; without a kept copy of the message it says so beside the two hashes."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from digest.config import Settings
from digest.db import transaction
from digest.models import Delivery, Item
from digest.runtime import Runtime
from digest.web import create_app
from tests.support import digest_in as digest
from tests.support import feed_server
from tests.web.conftest import CLOCK, log_in
from tests.web.test_admin import at, follow, ingest, send_all
from tests.web_support import outbox, serve

# Not https: the admin cookie of an https site would not come back over the test's plain HTTP.
MOVED = "http://digest.example.org:8080"


@pytest.fixture
def sent(rt: Runtime) -> dict[str, int]:
    """A delivery sent to reader@example.com (Python) at the base URL of the test settings."""
    follow(rt, "reader@example.com", at("2026-11-15T10:00"), "Python")
    with feed_server() as server:
        ingest(rt, server, at("2026-11-15T12:00"), ("Python 3.13 is out", "Faster startup."))
    return send_all(rt, at("2026-11-16T07:00:30"))


@contextmanager
def admin_at(admin_settings: Settings, base_url: str) -> Iterator[httpx.Client]:
    moved = admin_settings.model_copy(update={"base_url": base_url})
    with serve(create_app(moved, clock=lambda: CLOCK)) as http:
        assert log_in(http).status_code == 303
        yield http


def diff_lines(page: str) -> list[str]:
    block = re.search(r'<pre class="diff">(.*?)</pre>', page, re.S)
    assert block, "no diff on the page"
    return [html.unescape(line) for line in re.findall(r'<span class="\w+">(.*?)</span>', block[1])]


def retitle(rt: Runtime, title: str) -> None:
    with transaction(rt.sessions) as session:
        session.execute(update(Item).values(title=title))


def test_a_digest_sent_under_another_base_url_is_identical_once_the_base_is_put_back(
    admin_settings: Settings, rt: Runtime, sent: dict[str, int]
) -> None:
    with transaction(rt.sessions) as session:
        stored = session.scalar(select(Delivery.base_url).where(Delivery.id == sent["sent"]))
    assert stored == rt.settings.base_url != MOVED

    with admin_at(admin_settings, MOVED) as http:
        page = http.get(f"/admin/deliveries/{sent['sent']}").text

    assert "Identical to what was sent" in page and "Different from what was sent" not in page
    assert f"its links began with <code>{stored}</code> then; they use <code>{MOVED}</code> now" in page
    assert f"{MOVED}/u/" in html.unescape(page)  # the re-rendering shown links to today's site


def test_a_really_different_digest_shows_a_line_diff_escaped_without_base_url_noise(
    admin_settings: Settings, rt: Runtime, sent: dict[str, int]
) -> None:
    retitle(rt, "Python 3.14 <script>alert(1)</script> is out")

    with admin_at(admin_settings, MOVED) as http:
        page = http.get(f"/admin/deliveries/{sent['sent']}").text

    assert "Different from what was sent" in page and "<script>alert(1)</script>" not in page
    lines = diff_lines(page)
    changed = [line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert "--- sent/text" in lines and "+++ now/text" in lines
    assert any(line.startswith("-") and "Python 3.13 is out" in line for line in changed)
    assert any(
        line.startswith("+") and "Python 3.14 <script>alert(1)</script> is out" in line for line in changed
    )
    # The moved base URL is no difference: every changed line is about the title.
    assert all("3.13" in line or "3.14" in line for line in changed), changed


def test_without_a_kept_copy_the_page_says_why_there_is_no_diff(
    admin_settings: Settings, rt: Runtime, sent: dict[str, int]
) -> None:
    retitle(rt, "Python 3.14 is out")
    for path in (rt.settings.home / "outbox" / "new").iterdir():
        path.unlink()
    assert outbox(rt.settings) == []

    with admin_at(admin_settings, rt.settings.base_url) as http:
        page = http.get(f"/admin/deliveries/{sent['sent']}").text

    assert "Different from what was sent" in page and "keeps no copy of what was sent" in page
    assert '<pre class="diff">' not in page and "its links began" not in page


def test_digest_replay_preview_compares_the_same_way(
    rt: Runtime, sent: dict[str, int], tmp_path: Path
) -> None:
    out = str(tmp_path / "again.html")

    moved = digest(rt, "replay", str(sent["sent"]), "--preview", out, "--json", DIGEST_BASE_URL=MOVED)
    retitle(rt, "Python 3.14 is out")
    changed = digest(rt, "replay", str(sent["sent"]), "--preview", out, "--json", DIGEST_BASE_URL=MOVED)

    assert moved.returncode == 0 and json.loads(moved.stdout)["identical"] is True
    assert changed.returncode == 0 and json.loads(changed.stdout)["identical"] is False
