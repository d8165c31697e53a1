"""Retention (issue 19): items and deliveries past their settings are pruned in batches, exactly at the
boundary; daily figures outlive the items they count; a pruned delivery answers "pruned on DATE".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings, load_settings, settings_env
from digest.db import transaction
from digest.deliver import digests, history, replay
from digest.errors import ConfigError, NotFoundError, PrunedError
from digest.ingest.skills import resolve_skill
from digest.models import (
    Delivery,
    DeliveryEvent,
    DeliveryItem,
    Item,
    PrunedRange,
    Subscriber,
    Subscription,
    Tag,
)
from digest.ops import retention
from digest.runtime import Runtime
from digest.site.figures import daily, read
from digest.web import create_app
from tests.factories import NewItem, NewTag, add_items, add_source
from tests.web_support import serve

NOW = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
ITEMS = timedelta(days=400)
DELIVERIES = timedelta(days=180)
POLICY = retention.Policy(ITEMS, DELIVERIES)
SECOND = timedelta(seconds=1)
TOKEN = "admin-token-for-tests-0123456789"


def python_id(rt: Runtime) -> str:
    with transaction(rt.sessions) as session:
        skill = resolve_skill(session, "Python")
        assert skill is not None
        return skill.id


def store(rt: Runtime, *stored: datetime) -> list[int]:
    """Items tagged Python, first stored (and published) at each of ``stored``."""
    skill = python_id(rt)
    with transaction(rt.sessions) as session:
        source = session.scalar(select(func.min(Item.source_id))) or add_source(session, "Feed", NOW)
        return add_items(
            session,
            [
                NewItem(source, f"Python item {n}", at, tags=[NewTag(skill, ["Python"], True)])
                for n, at in enumerate(stored)
            ],
        )


def deliver(rt: Runtime, window_end: datetime, item_ids: tuple[int, ...] = ()) -> int:
    """A sent delivery whose window ended at ``window_end``, carrying ``item_ids``, with two events."""
    skill = python_id(rt)
    with transaction(rt.sessions) as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email == "r@example.com"))
        if subscriber is None:
            subscriber = Subscriber(email="r@example.com", timezone="UTC", state="active", created_at=NOW)
            session.add(subscriber)
            session.flush()
            session.add(
                Subscription(
                    subscriber_id=subscriber.id,
                    cadence="daily",
                    timezone="UTC",
                    state="active",
                    next_due_at=NOW,
                    created_at=NOW,
                )
            )
            session.flush()
        subscription_id = session.scalar(
            select(Subscription.id).where(Subscription.subscriber_id == subscriber.id)
        )
        assert subscription_id is not None
        delivery = Delivery(
            subscription_id=subscription_id,
            window_start=window_end - timedelta(days=1),
            window_end=window_end,
            status="sent",
            created_at=window_end,
            finished_at=window_end,
            body_hash="0" * 64,
        )
        session.add(delivery)
        session.flush()
        for position, item_id in enumerate(item_ids):
            session.add(
                DeliveryItem(delivery_id=delivery.id, position=position, item_id=item_id, skill_id=skill)
            )
        for event in ("claimed", "sent"):
            session.add(DeliveryEvent(delivery_id=delivery.id, at=window_end, event=event, detail=None))
        return delivery.id


def count(rt: Runtime, model: type[object]) -> int:
    with transaction(rt.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


def ids(rt: Runtime, column: object) -> set[int]:
    with transaction(rt.sessions) as session:
        return set(session.scalars(select(column)))  # type: ignore[call-overload]


def test_an_item_exactly_at_the_limit_stays_and_one_a_second_older_goes_with_its_tags(rt: Runtime) -> None:
    at_limit, older, young = store(rt, NOW - ITEMS, NOW - ITEMS - SECOND, NOW - timedelta(days=1))

    result = retention.prune(rt.sessions, POLICY, NOW)

    assert ids(rt, Item.id) == {at_limit, young}
    assert ids(rt, Tag.item_id) == {at_limit, young}
    assert (result.items, result.tags) == (1, 1)
    assert older not in ids(rt, Item.id)


def test_a_delivery_exactly_at_the_limit_stays_and_one_a_second_older_goes_with_its_manifest_and_events(
    rt: Runtime,
) -> None:
    [item] = store(rt, NOW - timedelta(days=200))
    at_limit = deliver(rt, NOW - DELIVERIES, (item,))
    older = deliver(rt, NOW - DELIVERIES - SECOND, (item,))

    result = retention.prune(rt.sessions, POLICY, NOW)

    assert ids(rt, Delivery.id) == {at_limit}
    assert ids(rt, DeliveryItem.delivery_id) == {at_limit}
    assert ids(rt, DeliveryEvent.delivery_id) == {at_limit}
    assert (result.deliveries, result.delivery_items, result.delivery_events) == (1, 1, 2)
    with transaction(rt.sessions) as session:
        [tombstone] = session.scalars(select(PrunedRange)).all()
    assert (tombstone.first_id, tombstone.last_id, tombstone.deliveries) == (older, older, 1)


def test_an_old_item_a_kept_delivery_still_carries_stays_until_the_delivery_goes(rt: Runtime) -> None:
    [item] = store(rt, NOW - ITEMS - timedelta(days=5))
    kept = deliver(rt, NOW - timedelta(days=10), (item,))

    retention.prune(rt.sessions, POLICY, NOW)
    assert ids(rt, Item.id) == {item}

    with transaction(rt.sessions) as session:
        session.execute(
            Delivery.__table__.update()
            .where(Delivery.id == kept)
            .values(window_end=NOW - DELIVERIES - SECOND)
        )
    retention.prune(rt.sessions, POLICY, NOW)
    assert ids(rt, Item.id) == set()


def test_pruning_goes_in_batches_and_finishes_what_an_earlier_run_left(rt: Runtime) -> None:
    old = NOW - ITEMS - timedelta(days=1)
    store(rt, *[old + timedelta(minutes=n) for n in range(7)])
    for n in range(5):
        deliver(rt, NOW - DELIVERIES - timedelta(days=n + 1))
    sizes: list[int] = []

    result = retention.prune(rt.sessions, POLICY, NOW, batch=3, progress=sizes.append)

    assert sizes == [3, 2, 3, 3, 1]
    assert (result.deliveries, result.items, result.batches) == (5, 7, 5)
    assert count(rt, Item) == count(rt, Delivery) == 0
    assert count(rt, PrunedRange) == 2
    assert retention.prune(rt.sessions, POLICY, NOW).batches == 0


def test_a_skill_pages_figures_are_unchanged_after_pruning_and_a_refresh(rt: Runtime) -> None:
    # Items over the last 500 days, the oldest past retention; the figures of a 500-day window count them.
    stored = [NOW - timedelta(days=days, hours=3) for days in (480, 450, 420, 401, 300, 100, 30, 2)]
    store(rt, *stored)
    skill = python_id(rt)
    with transaction(rt.sessions) as session:
        daily.refresh(session, (NOW - timedelta(days=500)).date(), NOW.date(), now=NOW)
        before = read.skill_figures(session, skill, NOW.date(), window_days=500)

    retention.prune(rt.sessions, POLICY, NOW)
    assert count(rt, Item) == 4
    with transaction(rt.sessions) as session:
        # A full rebuild, and the periodic one, must not rebuild the pruned days from what is left.
        daily.refresh(session, (NOW - timedelta(days=500)).date(), NOW.date(), now=NOW)
        daily.refresh_days(session, daily.periodic_days(session, NOW), now=NOW)
        after = read.skill_figures(session, skill, NOW.date(), window_days=500)

    assert before.total == 8
    assert after.as_json() == before.as_json()


def test_replaying_a_pruned_delivery_answers_pruned_on_the_date_everywhere(rt: Runtime) -> None:
    pruned = deliver(rt, NOW - DELIVERIES - timedelta(days=3))
    prune_day = NOW + timedelta(days=2)
    retention.prune(rt.sessions, POLICY, prune_day)
    said = f"delivery {pruned}: pruned on {prune_day:%Y-%m-%d}"

    with pytest.raises(PrunedError, match=said):
        digests.render_delivery(rt.sessions, pruned, rt.composer, rt.delivery)
    with pytest.raises(PrunedError, match=said):
        replay.resend(rt, pruned, "test", NOW)
    with pytest.raises(PrunedError, match=said), transaction(rt.sessions) as session:
        history.view(session, pruned)
    with pytest.raises(NotFoundError), transaction(rt.sessions) as session:
        history.view(session, pruned + 1)

    env = settings_env(rt.settings)
    done = CliRunner().invoke(app, ["replay", str(pruned), "--resend", "--json"], env=env)
    assert done.exit_code == 0, done.output
    answer = json.loads(done.output)
    assert (answer["delivery"], answer["status"]) == (pruned, "pruned")
    assert said in answer["detail"]
    done = CliRunner().invoke(app, ["replay", str(pruned), "--to", "admin@example.com"], env=env)
    assert (done.exit_code, said in done.output) == (0, True)
    done = CliRunner().invoke(app, ["deliveries", "show", str(pruned)], env=env)
    assert (done.exit_code, said in done.output) == (0, True)

    admin = rt.settings.model_copy(update={"admin_token": TOKEN})
    with serve(create_app(admin, clock=lambda: NOW)) as http:
        page = http.get(f"/admin/deliveries/{pruned}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 410
    assert f"pruned on {prune_day:%Y-%m-%d}" in page.text


def test_prune_dry_run_counts_and_deletes_nothing_and_the_command_prunes(rt: Runtime) -> None:
    store(rt, NOW - ITEMS - timedelta(days=30), NOW - timedelta(days=2))
    deliver(rt, NOW - DELIVERIES - timedelta(days=30))
    # The command reads the real clock: rows 30 days past the limit are past it whenever the test runs.
    env = settings_env(rt.settings)

    done = CliRunner().invoke(app, ["prune", "--dry-run", "--json"], env=env)
    assert done.exit_code == 0, done.output
    planned = json.loads(done.output)
    assert (planned["dry_run"], planned["deliveries"], planned["delivery_events"]) == (True, 1, 2)
    assert count(rt, Delivery) == 1

    done = CliRunner().invoke(app, ["prune"], env=env)
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())  # wrapped at the terminal's width, after the progress bar
    assert said.startswith("deleted 1 deliveries (window ended before ")
    assert "with 0 manifest rows and 2 events; 1 items (stored before " in said
    assert count(rt, Delivery) == 0
    done = CliRunner().invoke(app, ["prune", "--json"], env=env)
    assert (done.exit_code, json.loads(done.output)["deliveries"]) == (0, 0)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DIGEST_ITEM_RETENTION", "forever", "DIGEST_ITEM_RETENTION: accepts seconds or a duration"),
        ("DIGEST_ITEM_RETENTION", "30d", "DIGEST_ITEM_RETENTION: Input should be greater than or equal"),
        (
            "DIGEST_DELIVERY_RETENTION",
            "1h",
            "DIGEST_DELIVERY_RETENTION: Input should be greater than or equal",
        ),
    ],
)
def test_a_bad_retention_setting_is_one_readable_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings(secret_key="test-secret-key-0123456789abcdefghijkl")
    assert str(raised.value).startswith(says)
    assert "\n" not in str(raised.value)


def test_retention_settings_take_durations(settings: Settings) -> None:
    custom = load_settings(
        secret_key="test-secret-key-0123456789abcdefghijkl", item_retention="200d", delivery_retention="30d"
    )
    assert (custom.item_retention, custom.delivery_retention) == (200 * 86400, 30 * 86400)
    assert (settings.item_retention, settings.delivery_retention) == (400 * 86400, 180 * 86400)


def test_idempotency_keys_older_than_a_day_go_and_younger_ones_answer_on(rt: Runtime) -> None:
    from digest.models import ApiKey, IdempotentRequest

    with transaction(rt.sessions) as session:
        key = ApiKey(name="platform", prefix="dk_test", key_hash="0" * 64, scopes="subscribe", created_at=NOW)
        session.add(key)
        session.flush()
        for name, age in (
            ("kept", retention.IDEMPOTENCY_KEPT),
            ("gone", retention.IDEMPOTENCY_KEPT + SECOND),
        ):
            session.add(
                IdempotentRequest(
                    api_key_id=key.id,
                    key=name,
                    fingerprint="f" * 64,
                    status=201,
                    body={},
                    created_at=NOW - age,
                )
            )

    with transaction(rt.sessions) as session:
        planned = retention.plan(session, POLICY, NOW)
    result = retention.prune(rt.sessions, POLICY, NOW)

    assert planned.idempotent_requests == 1 and result.idempotent_requests == 1
    assert result.as_json()["idempotent_requests"] == 1
    with transaction(rt.sessions) as session:
        assert list(session.scalars(select(IdempotentRequest.key))) == ["kept"]
