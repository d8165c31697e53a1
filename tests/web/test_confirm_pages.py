"""Issue 17: after confirming, the page says when the first digest comes (the dispatch's window, as the manage
page says it), and a confirmation link used before says "already confirmed" with the manage link instead of
offering the button again. The app's clock is pinned to Monday 16 November 2026, 09:30 UTC."""

from __future__ import annotations

import re

import httpx

from digest.runtime import Runtime
from tests.web_support import csrf, link, outbox


def confirmation_link(client: httpx.Client, rt: Runtime, cadence: str = "daily") -> str:
    token = csrf(client.get("/subscribe?skill=python").text)
    fields = {"csrf": token, "email": "new@example.com", "skill": "python", "cadence": cadence, "hour": "8"}
    fields |= {"weekday": "4", "timezone": "Europe/Berlin", "website": ""}
    assert client.post("/subscribe", data=fields).status_code == 200
    return link(outbox(rt.settings)[-1], "confirm")


def manage_path(page: str) -> str:
    found = re.search(r'href="(/manage/[^"]+)"', page)
    assert found, "no manage link"
    return found[1]


def test_the_confirmed_page_and_the_manage_page_name_the_same_next_digest(
    app_client: httpx.Client, rt: Runtime
) -> None:
    path = confirmation_link(app_client, rt)

    done = app_client.post(path)
    manage = app_client.get(manage_path(done.text))

    # 09:30 UTC is 10:30 in Berlin: today's 08:00 has passed, so the first digest is tomorrow's.
    assert "You are subscribed" in done.text
    assert "Next digest: Tue 17 Nov, 08:00 (Europe/Berlin)" in done.text
    assert "Next digest: Tue 17 Nov, 08:00 (Europe/Berlin)" in manage.text


def test_a_weekly_digest_names_its_weekday(app_client: httpx.Client, rt: Runtime) -> None:
    done = app_client.post(confirmation_link(app_client, rt, "weekly"))

    assert "Next digest: Fri 20 Nov, 08:00 (Europe/Berlin)" in done.text


def test_a_reused_confirmation_link_says_already_confirmed_with_the_manage_link(
    app_client: httpx.Client, rt: Runtime
) -> None:
    path = confirmation_link(app_client, rt)
    assert '<form method="post"' in app_client.get(path).text
    app_client.post(path)

    again = app_client.get(path)

    assert again.status_code == 200 and "Already confirmed" in again.text
    assert '<form method="post"' not in again.text and ">Confirm</button>" not in again.text
    assert app_client.get(manage_path(again.text)).status_code == 200
    assert "Next digest: Tue 17 Nov, 08:00 (Europe/Berlin)" in again.text
