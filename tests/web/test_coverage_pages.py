"""Coverage you can see (issue 16): /admin/coverage and "Sources we watch for <skill>" on skill pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from digest.db import transaction
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.ingest import queries
from digest.runtime import Runtime
from digest.web import create_app
from tests.web_support import serve

DAILY = Schedule("daily", 8, 0, "UTC")
TOKEN = "admin-token-for-tests-0123456789"


@pytest.fixture
def site(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    settings = rt.settings.model_copy(update={"admin_token": TOKEN})
    with serve(create_app(settings, clock=lambda: now)) as http:
        yield http


def follow(rt: Runtime, now: datetime, email: str, *skills: str) -> None:
    with transaction(rt.sessions) as session:
        subscribe(session, email, skills, DAILY, now, confirmed=True)
        queries.reconcile(session, now, queries.bundled_templates(), {"pytorch": "pytorch/pytorch"})


def test_the_admin_coverage_page_lists_followed_skills_worst_first(
    site: httpx.Client, rt: Runtime, now: datetime
) -> None:
    follow(rt, now, "a@example.com", "PyTorch", "Go")
    follow(rt, now, "b@example.com", "Go")

    page = site.get("/admin/coverage", headers={"Authorization": f"Bearer {TOKEN}"})

    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert page.text.index(">Go</a>") < page.text.index(">PyTorch</a>")
    assert "never" in page.text


def test_the_coverage_page_needs_the_admin(site: httpx.Client) -> None:
    answer = site.get("/admin/coverage", follow_redirects=False)

    assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/login")


def test_a_skill_page_lists_the_sources_we_watch_for_it(
    site: httpx.Client, rt: Runtime, now: datetime
) -> None:
    before = site.get("/skills/pytorch").text
    follow(rt, now, "a@example.com", "PyTorch")

    after = site.get("/skills/pytorch").text

    assert "Sources we watch for PyTorch" in before and "No searches for PyTorch yet" in before
    assert 'href="https://hnrss.org/newest?q=PyTorch"' in after
    assert "GitHub releases: pytorch/pytorch" in after and "arXiv search: PyTorch" in after
