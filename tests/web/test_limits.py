"""Lists of skills are capped (issue 14, finding 3): 20 named in one request, on the manage form, the
API, the signup form and the CLI, and 50 held by one subscription; each refusal says so in words."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from sqlalchemy import func, select

from digest.config import settings_env
from digest.db import transaction
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.models import Skill, SubscriptionSkill
from digest.runtime import Runtime
from digest.tokens import MANAGE, make_token
from digest.vocabulary import MAX_SKILLS_PER_REQUEST, MAX_SKILLS_PER_SUBSCRIPTION
from digest.web import create_app
from tests.web_support import csrf, outbox, serve

EXTRA = 70


@pytest.fixture
def many_skills(rt: Runtime, now: datetime) -> list[str]:
    """Slugs of enough skills to pass every cap."""
    with transaction(rt.sessions) as session:
        for n in range(EXTRA):
            session.add(
                Skill(
                    id=f"limit{n:011d}",
                    key=f"limit-skill-{n}",
                    name=f"Limit skill {n}",
                    slug=f"limit-skill-{n}",
                    category="other",
                    taxonomy_version="test",
                )
            )
    return [f"limit-skill-{n}" for n in range(EXTRA)]


@pytest.fixture
def client(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        yield http


@pytest.fixture
def follower(rt: Runtime, now: datetime) -> tuple[int, str]:
    with transaction(rt.sessions) as session:
        info = subscribe(
            session, "cap@example.com", ["python"], Schedule("daily", 8, 0, "UTC"), now, confirmed=True
        )
    return info.id, make_token(rt.settings.secret_key, MANAGE, {"u": info.subscriber_id})


def skill_count(rt: Runtime, subscription_id: int) -> int:
    with transaction(rt.sessions) as session:
        query = select(func.count()).where(SubscriptionSkill.subscription_id == subscription_id)
        return int(session.scalar(query) or 0)


def add_on_page(client: httpx.Client, token: str, subscription: int, skills: str) -> httpx.Response:
    page = client.get(f"/manage/{token}")
    data = {"csrf": csrf(page.text), "action": "add", "subscription": str(subscription), "skills": skills}
    return client.post(f"/manage/{token}", data=data)


def test_the_manage_form_refuses_more_than_20_skills_at_once(
    client: httpx.Client, rt: Runtime, follower: tuple[int, str], many_skills: list[str]
) -> None:
    subscription, token = follower

    over = add_on_page(client, token, subscription, ",".join(many_skills[: MAX_SKILLS_PER_REQUEST + 1]))
    flood = add_on_page(client, token, subscription, "x," * 50_000)

    for answer in (over, flood):
        assert answer.status_code == 400 and "at most 20 skills at once" in answer.text
    assert skill_count(rt, subscription) == 1
    assert add_on_page(client, token, subscription, ",".join(many_skills[:20])).status_code == 303
    assert skill_count(rt, subscription) == 21


def test_a_subscription_holds_at_most_50_skills(
    client: httpx.Client, rt: Runtime, follower: tuple[int, str], many_skills: list[str]
) -> None:
    subscription, token = follower
    for start in (0, 20):
        assert add_on_page(client, token, subscription, ",".join(many_skills[start : start + 20])).is_redirect

    page = add_on_page(client, token, subscription, ",".join(many_skills[40:50]))
    api = client.patch(
        f"/api/manage/{token}/subscriptions/{subscription}", json={"add_skills": many_skills[40:50]}
    )

    assert page.status_code == 400 and f"at most {MAX_SKILLS_PER_SUBSCRIPTION} skills" in page.text
    assert api.status_code == 400 and f"at most {MAX_SKILLS_PER_SUBSCRIPTION} skills" in api.json()["detail"]
    assert skill_count(rt, subscription) == 41
    assert add_on_page(client, token, subscription, ",".join(many_skills[40:49])).is_redirect
    assert skill_count(rt, subscription) == MAX_SKILLS_PER_SUBSCRIPTION


def test_the_api_refuses_more_than_20_skills_in_one_request(
    client: httpx.Client, rt: Runtime, follower: tuple[int, str], many_skills: list[str]
) -> None:
    subscription, token = follower
    signup = {"email": "many@example.com", "skills": many_skills[:21], "cadence": "daily"}

    created = client.post("/api/subscriptions", json=signup)
    patched = client.patch(
        f"/api/manage/{token}/subscriptions/{subscription}", json={"add_skills": many_skills[:21]}
    )

    for answer in (created, patched):
        assert answer.status_code == 422 and "at most 20" in answer.json()["detail"][0]["msg"]
    assert outbox(rt.settings) == [] and skill_count(rt, subscription) == 1


def test_the_signup_form_says_when_a_link_names_too_many_skills(
    client: httpx.Client, many_skills: list[str]
) -> None:
    query = "&".join(f"skill={slug}" for slug in many_skills[:25])

    page = client.get(f"/subscribe?{query}")

    assert page.status_code == 200 and "at most 20 skills at once (25 were given)" in page.text


def test_the_cli_refuses_more_than_20_skills_in_one_line(rt: Runtime, many_skills: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | settings_env(rt.settings)
    repeated = [word for slug in many_skills[:21] for word in ("--skill", slug)]

    result = subprocess.run(
        [sys.executable, "-m", "digest.cli", "subscribe", "cli@example.com", *repeated, "--confirmed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1 and "at most 20 skills at once" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
