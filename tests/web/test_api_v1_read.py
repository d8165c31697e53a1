"""The read routes of /api/v1: resolve (the matcher's tags and names to skills), a skill's figures (the shape
of `digest skills stats --json`) and trends (the skills moving most); bad input is a problem, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings
from digest.db import transaction
from digest.ingest.skills import resolve_skill
from digest.runtime import Runtime
from digest.site.figures import daily
from digest.web import create_app
from tests.factories import NewItem, NewTag, add_items, add_source
from tests.web.api_v1_support import bearer, new_key, problem_of
from tests.web_support import serve

TEXT = "We moved the K8s cluster and retrained PyTorch models in Python 3.12, with no trust issues."
# Items per skill in the last 7 UTC days and in the 7 before (days back from the pinned clock's day).
POSTED = {"Python": (6, 2), "Rust": (3, 6), "Docker": (4, 0), "Kubernetes": (2, 1), "Go": (1, 1)}


@pytest.fixture
def client(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        yield http


@pytest.fixture
def key(rt: Runtime, now: datetime) -> dict[str, str]:
    return bearer(new_key(rt, "site", now, "read"))


@pytest.fixture
def posted(rt: Runtime, now: datetime) -> None:
    """The items of ``POSTED``, one a day going back, and the daily figures refreshed over them."""
    with transaction(rt.sessions) as session:
        source = add_source(session, "Wire", now)
        items = []
        for name, (recent, prior) in POSTED.items():
            skill_id = resolve_skill(session, name).id
            days = [*range(recent), *range(7, 7 + prior)]
            for back in days:
                at = now - timedelta(days=back, hours=1)
                tag = NewTag(skill_id, [name], in_title=True)
                items.append(NewItem(source, f"{name} news {back}", at, [tag]))
        add_items(session, items)
        daily.refresh(session, (now - timedelta(days=60)).date(), now.date(), now=now)


def test_resolve_answers_the_matchers_tags_with_spans_and_each_name(
    client: httpx.Client, rt: Runtime, key: dict[str, str]
) -> None:
    answer = client.post(
        "/api/v1/resolve", json={"text": TEXT, "names": ["k8s", "pytorch", "pythn", "qqqqqq"]}, headers=key
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    with transaction(rt.sessions) as session:
        tags = rt.matchers.get(session).tag("", TEXT)
    assert [e["skill"]["id"] for e in body["entities"]] == [tag.skill_id for tag in tags]
    assert [e["matched"] for e in body["entities"]] == [list(tag.matched) for tag in tags]
    assert [e["score"] for e in body["entities"]] == [tag.score for tag in tags]
    found = {e["skill"]["name"]: e for e in body["entities"]}
    assert set(found) == {"Kubernetes", "PyTorch", "Python"}
    assert found["Python"]["matched"] == ["Python 3.12"]
    assert found["Kubernetes"]["skill"]["slug"] == "kubernetes"
    for entity in body["entities"]:
        assert [TEXT[start:end] for start, end in entity["spans"]] == entity["matched"]
    k8s, pytorch, typo, nothing = body["names"]
    assert k8s["skill"]["name"] == "Kubernetes" and k8s["suggestions"] == []
    assert pytorch["skill"] == {"id": "e8795e623be803af", "name": "PyTorch", "slug": "pytorch"}
    assert typo["skill"] is None and "Python" in [s["name"] for s in typo["suggestions"]]
    assert nothing == {"name": "qqqqqq", "skill": None, "suggestions": []}


def test_resolve_of_nothing_is_empty(client: httpx.Client, key: dict[str, str]) -> None:
    answer = client.post("/api/v1/resolve", json={}, headers=key)

    assert answer.json() == {"entities": [], "names": []}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"text": "Rust', 400),
        (b"not json at all", 400),
        (b'{"text": 5}', 422),
        (b'{"names": "k8s"}', 422),
        (b'{"names": [1, 2]}', 422),
        (b"[]", 422),
        (json.dumps({"text": "x" * 60_001}).encode(), 422),
        (json.dumps({"names": ["a"] * 51}).encode(), 422),
    ],
)
def test_a_bad_resolve_body_is_a_problem(
    client: httpx.Client, key: dict[str, str], body: bytes, status: int
) -> None:
    answer = client.post("/api/v1/resolve", content=body, headers={**key, "Content-Type": "application/json"})

    problem = problem_of(answer, status)
    assert problem["errors"] and all(set(error) == {"loc", "msg", "type"} for error in problem["errors"])


@pytest.fixture
def home(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIGEST_HOME", str(settings.home))
    monkeypatch.setenv("DIGEST_DATABASE_URL", settings.database_url)
    return settings.home


@pytest.mark.usefixtures("posted", "home")
def test_a_skill_answers_what_skills_stats_json_prints(
    client: httpx.Client, key: dict[str, str], now: datetime
) -> None:
    by_slug = client.get("/api/v1/skills/python", headers=key)
    by_id = client.get("/api/v1/skills/11a4a60b518bf249", headers=key)
    today = now.date().isoformat()
    printed = CliRunner().invoke(app, ["skills", "stats", "python", "--today", today, "--json"])

    assert by_slug.status_code == 200, by_slug.text
    assert by_slug.json() == json.loads(printed.stdout) == by_id.json()
    assert by_slug.json()["total"] == 8 and len(by_slug.json()["latest"]) == 8


def test_an_unknown_skill_is_404_with_suggestions(client: httpx.Client, key: dict[str, str]) -> None:
    refused = client.get("/api/v1/skills/pythn", headers=key)

    assert "did you mean Python" in problem_of(refused, 404)["detail"]
    problem_of(client.get("/api/v1/skills/" + "x" * 301, headers=key), 422)


@pytest.mark.usefixtures("posted")
def test_trends_rank_by_percent_then_new_ones_by_count(client: httpx.Client, key: dict[str, str]) -> None:
    up = client.get("/api/v1/trends", params={"period": "7d", "direction": "up"}, headers=key).json()
    down = client.get("/api/v1/trends?direction=down", headers=key).json()
    top = client.get("/api/v1/trends?limit=1", headers=key).json()
    month = client.get("/api/v1/trends?period=28d", headers=key).json()

    assert (up["start"], up["end"]) == ("2026-11-10", "2026-11-16")
    rows = [(s["name"], s["count"], s["prior_count"], s["change_percent"], s["new"]) for s in up["skills"]]
    assert rows == [
        ("Python", 6, 2, 200, False),
        ("Kubernetes", 2, 1, 100, False),
        ("Docker", 4, 0, None, True),
    ]
    assert [(s["name"], s["change_percent"]) for s in down["skills"]] == [("Rust", -50)]
    assert [s["name"] for s in top["skills"]] == ["Python"]
    # Over 28 days nothing was before: all new, by count.
    assert [s["name"] for s in month["skills"]] == ["Rust", "Python", "Docker", "Kubernetes", "Go"]
    assert all(s["new"] and s["change_percent"] is None for s in month["skills"])


@pytest.mark.parametrize("query", ["period=1y", "direction=sideways", "limit=0", "limit=101", "limit=ten"])
def test_bad_trend_parameters_are_422(client: httpx.Client, key: dict[str, str], query: str) -> None:
    problem_of(client.get(f"/api/v1/trends?{query}", headers=key), 422)


def test_the_edges_refusals_are_problems_too(client: httpx.Client, key: dict[str, str]) -> None:
    huge = json.dumps({"text": "x" * 70_000})

    too_big = client.post(
        "/api/v1/resolve", content=huge, headers={**key, "Content-Type": "application/json"}
    )
    nul = client.get("/api/v1/trends?period=%00", headers=key)

    assert "64 KiB" in problem_of(too_big, 413)["detail"]
    assert "NUL" in problem_of(nul, 400)["detail"]
