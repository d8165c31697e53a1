"""Issue 17, signup, manage and unsubscribe: errors in one human sentence beside their field with the form
kept filled in, fields by cadence, the timezone picker, the alert form's inline errors, and the unsubscribe
page's "weekly instead" and undo. Every bad input is a 4xx page, never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from digest.db import transaction
from digest.deliver import alerts, subscribers
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.records import SubscriptionInfo
from digest.runtime import Runtime
from digest.tokens import MANAGE, UNDO, UNSUBSCRIBE, make_token, make_until
from digest.web import create_app
from digest.web.manage import UNDO_PERIOD
from tests.web_support import csrf, outbox, serve

HUMAN = "That does not look like an email address: check it and try again (e.g. name@example.com)."


@pytest.fixture
def clock(now: datetime) -> list[datetime]:
    """The app's clock, moved by the test."""
    return [now]


@pytest.fixture
def client(rt: Runtime, clock: list[datetime]) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: clock[0])) as http:
        yield http


def reader_with(rt: Runtime, now: datetime, cadence: str = "daily", zone: str = "UTC") -> SubscriptionInfo:
    with transaction(rt.sessions) as session:
        return subscribe(
            session, "reader@example.com", ["Python"], Schedule(cadence, 8, 2, zone), now, confirmed=True
        )


def state_of(rt: Runtime, subscription_id: int) -> SubscriptionInfo:
    with transaction(rt.sessions) as session:
        return subscribers.describe(session, subscription_id)


def signup(client: httpx.Client, **fields: str) -> httpx.Response:
    form = client.get("/subscribe?skill=python")
    data = {"csrf": csrf(form.text), "email": "reader@example.com", "skill": "python", "cadence": "daily"}
    data |= {"hour": "8", "weekday": "0", "timezone": "Europe/Berlin"} | fields
    return client.post("/subscribe", data={name: value for name, value in data.items() if value != "-"})


# Signup ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["reader@@example.com", "reader@example", "no-at-sign", "a b@example.com", "x" * 330, "ü@-.com", "@"],
)
def test_a_bad_address_gets_one_human_sentence_beside_the_field_and_the_form_stays_filled(
    client: httpx.Client, rt: Runtime, address: str
) -> None:
    page = signup(client, email=address, cadence="weekly", hour="17", weekday="4", timezone="Asia/Tokyo")

    assert page.status_code == 400
    assert page.text.count(HUMAN) == 1
    assert "@-sign" not in page.text and "not a valid email address" not in page.text
    field = re.search(
        r'<p id="email-error" class="field-error">[^<]+</p>\s*<input id="email"[^>]*>', page.text
    )
    assert (
        field
        and 'aria-invalid="true"' in field.group(0)
        and 'aria-describedby="email-error"' in field.group(0)
    )
    assert '<a href="#email">your email address</a>' in page.text
    # Kept as typed (escaped), with the other choices.
    assert re.search(r'name="skill" value="[^"]+" checked> Python', page.text)
    assert 'value="weekly" checked' in page.text
    assert '<option value="17" selected>' in page.text and '<option value="4" selected>' in page.text
    assert '<option value="Asia/Tokyo" selected>' in page.text
    assert outbox(rt.settings) == []


def test_an_empty_address_asks_for_one(client: httpx.Client) -> None:
    page = signup(client, email="   ")

    assert page.status_code == 400 and page.text.count("Enter your email address.") == 1


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"timezone": "Etc/Nowhere"}, "Choose your timezone from the list."),
        ({"timezone": "../../etc/passwd"}, "Choose your timezone from the list."),
        ({"cadence": "monthly"}, "Choose how often: hourly, daily or weekly."),
        ({"cadence": "daily", "hour": "25"}, "Choose a time of day from the list."),
        ({"cadence": "weekly", "weekday": "-"}, "Choose a day of the week from the list."),
        ({"cadence": "weekly", "weekday": "٣"}, "Choose a day of the week from the list."),
    ],
)
def test_a_bad_schedule_is_named_beside_the_timezone_in_words(
    client: httpx.Client, fields: dict[str, str], words: str
) -> None:
    page = signup(client, **fields)

    assert page.status_code == 400 and page.text.count(words) == 1
    assert 'id="schedule-error"' in page.text


def test_an_hourly_signup_needs_no_hour_or_day(client: httpx.Client, rt: Runtime) -> None:
    page = signup(client, cadence="hourly", hour="-", weekday="-")

    assert page.status_code == 200 and "reader@example.com" in page.text
    assert len(outbox(rt.settings)) == 1


def test_the_form_marks_which_cadence_uses_which_field_for_the_script(client: httpx.Client) -> None:
    page = client.get("/subscribe?skill=python&cadence=hourly").text

    assert '<div data-cadences="daily weekly"><label for="hour">' in page
    assert '<div data-cadences="weekly"><label for="weekday">' in page
    assert '<script src="/static/forms.js"></script>' in page
    script = client.get("/static/forms.js")
    assert script.status_code == 200 and "data-cadences" in script.text


def test_the_timezone_picker_lists_common_zones_first_and_places_by_city_without_raw_names(
    client: httpx.Client,
) -> None:
    page = client.get("/subscribe?skill=python").text
    picker = page[page.index('<select id="timezone"') :]
    picker = picker[: picker.index("</select>")]
    values = re.findall(r'<option value="([^"]+)"', picker)

    common, everything = picker.split('<optgroup label="Every place, by city">')
    assert re.findall(r'<option value="([^"]+)"', common)[:3] == [
        "UTC",
        "America/Los_Angeles",
        "America/Denver",
    ]
    assert ">New York (America)</option>" in everything or "New York (America)" in common
    assert ">Buenos Aires (America/Argentina)</option>" in everything
    for raw in ("Factory", "Etc/GMT+5", "US/Eastern", "EST5EDT", "GMT+0"):
        assert raw not in values
    assert len(values) == len(set(values)) and 300 < len(values) < 600


def test_a_link_naming_a_zone_selects_it_and_says_so_to_the_script(client: httpx.Client) -> None:
    named = client.get("/subscribe?skill=python&timezone=Asia/Kolkata").text
    unnamed = client.get("/subscribe?skill=python&timezone=Mars/Olympus").text

    assert '<option value="Asia/Kolkata" selected>' in named and 'data-given="yes"' in named
    assert 'data-given="no"' in unnamed and "Mars/Olympus" not in unnamed


# Manage ------------------------------------------------------------------------------------------------


def test_the_manage_page_keeps_a_stored_zone_outside_the_list_selected(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    info = reader_with(rt, now, zone="Etc/UTC")
    token = make_token(rt.settings.secret_key, MANAGE, {"u": info.subscriber_id})

    page = client.get(f"/manage/{token}").text

    assert '<option value="Etc/UTC" selected>' in page
    assert f'<div data-cadences="weekly"><label for="weekday-{info.id}">' in page


def test_a_schedule_change_without_the_fields_its_cadence_ignores_is_saved(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    info = reader_with(rt, now)
    token = make_token(rt.settings.secret_key, MANAGE, {"u": info.subscriber_id})
    page = client.get(f"/manage/{token}")

    done = client.post(
        f"/manage/{token}",
        data={
            "csrf": csrf(page.text),
            "action": "schedule",
            "subscription": str(info.id),
            "cadence": "hourly",
            "timezone": "Europe/Berlin",
        },
    )
    refused = client.post(
        f"/manage/{token}",
        data={
            "csrf": csrf(page.text),
            "action": "schedule",
            "subscription": str(info.id),
            "cadence": "weekly",
            "hour": "8",
            "timezone": "Europe/Berlin",
        },
    )

    assert done.status_code == 303
    assert refused.status_code == 400 and "Choose a day of the week from the list." in refused.text
    [after] = [s for s in subscribers_of(rt, info.subscriber_id) if s.state == "active"]
    assert (after.cadence, after.timezone) == ("hourly", "Europe/Berlin")


def subscribers_of(rt: Runtime, subscriber_id: int) -> list[SubscriptionInfo]:
    with transaction(rt.sessions) as session:
        return subscribers.subscriptions_of(session, subscriber_id)


def alert_post(client: httpx.Client, token: str, **fields: str) -> httpx.Response:
    page = client.get(f"/manage/{token}")
    data = {"csrf": csrf(page.text), "action": "alert_add", "skill": "rust", "period": "7d"}
    return client.post(f"/manage/{token}/alerts", data=data | {"threshold": "40", "min_count": "5"} | fields)


def test_an_unknown_alert_skill_stays_on_the_manage_page_with_suggestions_and_the_form_filled(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    info = reader_with(rt, now)
    token = make_token(rt.settings.secret_key, MANAGE, {"u": info.subscriber_id})

    page = alert_post(client, token, skill="pythn", threshold="75")

    assert page.status_code == 400
    assert (
        page.text.count("We do not know the skill “pythn”.") == 1
        and "Did you mean: <strong>Python</strong>" in page.text
    )
    assert (
        'id="alert-skill-error"' in page.text and 'value="pythn"' in page.text and 'value="75"' in page.text
    )
    assert '<option value="7d" selected>' in page.text
    assert "Digests for reader@example.com" in page.text


def test_several_bad_alert_fields_each_get_their_own_message(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    info = reader_with(rt, now)
    token = make_token(rt.settings.secret_key, MANAGE, {"u": info.subscriber_id})

    page = alert_post(client, token, threshold="1e9", min_count="lots", period="1y")

    assert page.status_code == 400
    for field in ("threshold", "min_count", "period"):
        assert f'id="alert-{field}-error"' in page.text
    assert 'id="alert-skill-error"' not in page.text


def test_an_added_alert_says_so_in_words_about_alerts(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    info = reader_with(rt, now)
    token = make_token(rt.settings.secret_key, MANAGE, {"u": info.subscriber_id})

    added = alert_post(client, token)
    page = client.get(added.headers["location"])

    assert added.status_code == 303 and added.headers["location"].endswith("?note=alert_added")
    assert "Alert added: we email you on a day its mentions rise" in page.text
    assert "Saved. The change applies" not in page.text
    with transaction(rt.sessions) as session:
        assert [alert.skill for alert in alerts.of_subscriber(session, info.subscriber_id)] == ["Rust"]


# Unsubscribe -------------------------------------------------------------------------------------------


def unsubscribe_token(rt: Runtime, info: SubscriptionInfo) -> str:
    return make_token(rt.settings.secret_key, UNSUBSCRIBE, {"s": info.id})


def undo_value(page: str) -> str:
    found = re.search(r'name="undo" value="([^"]+)"', page)
    assert found, "no undo button"
    return found.group(1)


def test_a_daily_reader_can_switch_to_weekly_instead_of_leaving(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    info = reader_with(rt, now)
    token = unsubscribe_token(rt, info)
    page = client.get(f"/u/{token}")
    assert "Switch to weekly instead" in page.text

    switched = client.post(f"/u/{token}/weekly", data={"csrf": csrf(page.text)})

    assert switched.status_code == 200 and "Weekly from now on" in switched.text
    assert "Next digest: Wed " in switched.text
    [after] = subscribers_of(rt, info.subscriber_id)
    assert (after.cadence, after.state, after.skills) == ("weekly", "active", ("Python",))


def test_switching_to_weekly_needs_the_page_s_form_and_a_live_digest(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    info = reader_with(rt, now)
    token = unsubscribe_token(rt, info)
    page = client.get(f"/u/{token}")

    forged = client.post(f"/u/{token}/weekly", data={"csrf": "nope"})
    client.post(f"/u/{token}")
    too_late = client.post(f"/u/{token}/weekly", data={"csrf": csrf(page.text)})

    assert forged.status_code in (400, 403)
    assert too_late.status_code == 409 and "subscribe again" in too_late.text
    assert state_of(rt, info.id).cadence == "daily"


def test_a_weekly_reader_is_not_offered_weekly(client: httpx.Client, rt: Runtime, now: datetime) -> None:
    info = reader_with(rt, now, cadence="weekly")

    assert "Switch to weekly instead" not in client.get(f"/u/{unsubscribe_token(rt, info)}").text


def test_unsubscribing_offers_an_undo_that_subscribes_again_in_one_click(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    info = reader_with(rt, now)
    token = unsubscribe_token(rt, info)

    left = client.post(f"/u/{token}")
    assert state_of(rt, info.id).state == "unsubscribed"
    back = client.post(f"/u/{token}/undo", data={"csrf": csrf(left.text), "undo": undo_value(left.text)})

    assert "The undo button works for 60 minutes." in left.text
    assert back.status_code == 200 and "You are subscribed again" in back.text and "Next digest:" in back.text
    assert state_of(rt, info.id).state == "active"


def test_an_undo_puts_a_paused_digest_back_to_paused(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    info = reader_with(rt, now)
    with transaction(rt.sessions) as session:
        subscribers.pause(session, info.subscriber_id, info.id)
    token = unsubscribe_token(rt, info)

    left = client.post(f"/u/{token}")
    client.post(f"/u/{token}/undo", data={"csrf": csrf(left.text), "undo": undo_value(left.text)})

    assert state_of(rt, info.id).state == "paused"


def test_an_undo_after_the_time_limit_says_it_expired(
    client: httpx.Client, rt: Runtime, now: datetime, clock: list[datetime]
) -> None:
    info = reader_with(rt, now)
    token = unsubscribe_token(rt, info)
    left = client.post(f"/u/{token}")

    clock[0] = now + UNDO_PERIOD + timedelta(seconds=1)
    late = client.post(f"/u/{token}/undo", data={"csrf": csrf(left.text), "undo": undo_value(left.text)})

    assert late.status_code == 410
    assert "The undo button has expired: it works for 60 minutes after unsubscribing." in late.text
    assert "Email me a link to manage my digests" in late.text
    assert state_of(rt, info.id).state == "unsubscribed"


def test_a_second_unsubscribe_of_a_stopped_digest_offers_no_undo(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    info = reader_with(rt, now)
    token = unsubscribe_token(rt, info)
    client.post(f"/u/{token}")

    again = client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click")

    assert again.status_code == 200 and 'name="undo"' not in again.text


@pytest.mark.parametrize("kind", ["garbage", "other-subscription", "other-purpose", "no-deadline"])
def test_a_bad_undo_token_is_a_clear_4xx(client: httpx.Client, rt: Runtime, now: datetime, kind: str) -> None:
    info = reader_with(rt, now)
    token = unsubscribe_token(rt, info)
    left = client.post(f"/u/{token}")
    secret, until = rt.settings.secret_key, now + UNDO_PERIOD
    undo = {
        "garbage": "x.y.z",
        "other-subscription": make_until(secret, UNDO, {"s": info.id + 1, "p": "active"}, until),
        "other-purpose": make_until(secret, UNSUBSCRIBE, {"s": info.id, "p": "active"}, until),
        "no-deadline": make_token(secret, UNDO, {"s": info.id, "p": "active"}),
    }[kind]

    page = client.post(f"/u/{token}/undo", data={"csrf": csrf(left.text), "undo": undo})

    assert page.status_code == 400 and "That did not work" in page.text
    assert state_of(rt, info.id).state == "unsubscribed"
