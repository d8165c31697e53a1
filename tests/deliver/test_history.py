"""The read model of deliveries (digest/deliver/history.py, issue 13): keyset pages newest first, filters,
and ``digest deliveries list`` costing the same statements for 10 deliveries as for 1,000.

Deliveries are written straight into the database here: what is read back is the point, not how the
pipeline makes them (test_digests.py and test_replay.py cover that, and ``deliveries show``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from digest.cli import app
from digest.config import settings_env
from digest.db import transaction
from digest.deliver import history
from digest.errors import DigestError, InvalidInputError
from digest.ingest.skills import resolve_skill
from digest.models import Delivery, DeliveryItem, Subscriber, Subscription
from digest.runtime import Runtime
from tests.figure_data import add_sources, post

START = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)


@pytest.fixture
def python_items(rt: Runtime) -> tuple[str, list[int]]:
    """The Python skill's id and two items tagged with it."""
    with transaction(rt.sessions) as session:
        python = resolve_skill(session, "Python").id
        source = add_sources(session, START)["Morning Wire"]
        tags = [(python, ["Python"], True, 1)]
        return python, [post(session, source, f"Python item {n}", START, tags) for n in range(2)]


def subscription(rt: Runtime, email: str) -> int:
    with transaction(rt.sessions) as session:
        person = Subscriber(email=email, timezone="UTC", state="active", created_at=START)
        session.add(person)
        session.flush()
        row = Subscription(
            subscriber_id=person.id,
            cadence="daily",
            timezone="UTC",
            state="active",
            next_due_at=START,
            created_at=START,
        )
        session.add(row)
        session.flush()
        return row.id


def add_deliveries(
    rt: Runtime,
    subscription_id: int,
    statuses: Sequence[str],
    carried: tuple[str, list[int]],
    first_day: int = 0,
) -> list[int]:
    """One daily delivery per status, oldest first, each sent one carrying ``carried``; their ids."""
    skill_id, item_ids = carried
    ends = [START + timedelta(days=first_day + n) for n in range(len(statuses))]
    with transaction(rt.sessions) as session:
        session.execute(
            insert(Delivery),
            [
                {
                    "subscription_id": subscription_id,
                    "window_start": end - timedelta(days=1),
                    "window_end": end,
                    "status": status,
                    "attempts": 0 if status == "pending" else 1,
                    "error": "452 4.2.2 mailbox full" if status == "failed" else None,
                    "finished_at": None if status == "pending" else end + timedelta(seconds=30),
                    "created_at": end,
                }
                for end, status in zip(ends, statuses, strict=True)
            ],
        )
        ids = list(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.subscription_id == subscription_id, Delivery.window_end.in_(ends))
                .order_by(Delivery.window_end)
            )
        )
        manifests = [
            {"delivery_id": did, "position": n, "item_id": item, "skill_id": skill_id, "matched": ["Python"]}
            for did, status in zip(ids, statuses, strict=True)
            if status == "sent"
            for n, item in enumerate(item_ids)
        ]
        if manifests:
            session.execute(insert(DeliveryItem), manifests)
    return ids


@contextmanager
def counted() -> Iterator[list[str]]:
    """Every SQL statement any engine sends while inside."""
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", seen)


def cli(rt: Runtime, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=settings_env(rt.settings))
    if isinstance(result.exception, DigestError):
        # ``digest.cli.main`` prints these as one line; ``app`` alone lets them through.
        return 1, str(result.exception)
    return result.exit_code, result.output


def listed(rt: Runtime, *args: str) -> tuple[list[dict[str, object]], int]:
    """``digest deliveries list --json`` with ``args``: its rows and the SQL statements it sent."""
    with counted() as statements:
        code, output = cli(rt, "deliveries", "list", *args, "--json")
    assert code == 0, output
    return json.loads(output), len(statements)


def test_deliveries_list_sends_as_many_statements_for_1000_deliveries_as_for_10(
    rt: Runtime, python_items: tuple[str, list[int]]
) -> None:
    subscription_id = subscription(rt, "many@example.com")
    add_deliveries(rt, subscription_id, ["sent"] * 10, python_items)
    ten, at_ten = listed(rt)
    add_deliveries(rt, subscription_id, ["sent", "failed"] * 495, python_items, first_day=10)

    default_page, at_thousand = listed(rt)
    everything, all_at_once = listed(rt, "--limit", "1000")

    assert (len(ten), len(default_page), len(everything)) == (10, 50, 1000)
    assert at_ten == at_thousand == all_at_once
    assert all(row["items"] == python_items[1] for row in ten)
    assert [row["status"] for row in everything[:2]] == ["failed", "sent"]


def test_pages_follow_one_another_newest_first_without_overlap(
    rt: Runtime, python_items: tuple[str, list[int]]
) -> None:
    ids = add_deliveries(rt, subscription(rt, "reader@example.com"), ["sent"] * 7, python_items)
    pages, before = [], None
    with transaction(rt.sessions) as session:
        while True:
            found = history.page(session, history.DeliveryQuery(before=before, limit=3))
            pages.append([row.id for row in found.rows])
            if found.next_before is None:
                break
            before = found.next_before

    assert pages == [ids[:3:-1], ids[3:0:-1], ids[:1]]


def test_a_row_carries_its_manifest_attempts_last_reply_and_send_time(
    rt: Runtime, python_items: tuple[str, list[int]]
) -> None:
    sent, failed, pending = add_deliveries(
        rt, subscription(rt, "reader@example.com"), ["sent", "failed", "pending"], python_items
    )
    with transaction(rt.sessions) as session:
        rows = {row.id: row for row in history.page(session, history.DeliveryQuery()).rows}

    assert (rows[sent].item_count, rows[sent].skills, rows[sent].sent_at) == (
        2,
        ("Python",),
        START + timedelta(seconds=30),
    )
    assert (rows[failed].attempts, rows[failed].error, rows[failed].sent_at) == (
        1,
        "452 4.2.2 mailbox full",
        None,
    )
    assert (rows[pending].item_count, rows[pending].attempts, rows[pending].subscriber) == (
        0,
        0,
        "reader@example.com",
    )


def test_the_list_filters_by_address_and_status_and_pages_with_before(
    rt: Runtime, python_items: tuple[str, list[int]]
) -> None:
    mine = add_deliveries(
        rt, subscription(rt, "reader@example.com"), ["sent", "pending", "failed"], python_items
    )
    add_deliveries(rt, subscription(rt, "other@example.org"), ["sent"], python_items)
    with transaction(rt.sessions) as session:
        session.execute(Delivery.__table__.update().where(Delivery.id == mine[1]).values(status="sending"))

    by_address, _ = listed(rt, "--subscriber", " Reader@Example.com ")
    pending, _ = listed(rt, "--status", "pending")
    older, _ = listed(rt, "--subscriber", "reader@example.com", "--before", str(mine[2]), "--limit", "1")

    assert [row["id"] for row in by_address] == mine[::-1]
    assert [(row["id"], row["status"]) for row in pending] == [(mine[1], "pending")]
    assert [row["id"] for row in older] == [mine[1]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--limit", "0"), "--limit takes a number from 1 to 1000"),
        (("--limit", "1001"), "--limit takes a number from 1 to 1000"),
        (("--status", "lost"), "--status takes one of pending, sent, skipped, failed"),
        (("--before", "-1"), "before: a delivery id"),
        (("--before", str(2**64)), "before: a delivery id"),
    ],
)
def test_a_bad_list_option_is_one_line(rt: Runtime, args: tuple[str, ...], message: str) -> None:
    code, output = cli(rt, "deliveries", "list", *args)

    assert code == 1 and message in output and len(output.strip().splitlines()) == 1


def test_an_id_too_large_for_the_database_is_not_found(rt: Runtime) -> None:
    code, output = cli(rt, "deliveries", "show", str(2**64))

    assert code == 1 and f"no delivery with id {2**64}" in output


def test_a_page_larger_than_the_cap_is_refused(rt: Runtime) -> None:
    with transaction(rt.sessions) as session, pytest.raises(InvalidInputError, match="limit"):
        history.page(session, history.DeliveryQuery(limit=history.MAX_LIMIT + 1))


def test_the_table_says_how_to_ask_for_older_deliveries_only_when_there_are_some(
    rt: Runtime, python_items: tuple[str, list[int]]
) -> None:
    ids = add_deliveries(rt, subscription(rt, "reader@example.com"), ["sent"] * 3, python_items)

    code, first = cli(rt, "deliveries", "list", "--limit", "2")
    _, last = cli(rt, "deliveries", "list", "--limit", "2", "--before", str(ids[1]))

    assert code == 0 and "reader@example.com" in first
    assert f"--before {ids[1]}" in first and "--before" not in last
