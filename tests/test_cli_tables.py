"""The `digest` tables at 80 columns (issue 17): no line wider than the terminal, headers whole, data
strings (ids, addresses, statuses) on one line, times in words; free text wraps and widens with the terminal.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from digest.cli.common import relative
from digest.db import transaction
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.models import Delivery, Source
from digest.runtime import Runtime
from tests.support import digest_in

LONG_NAME = "The Morning Wire about distributed systems, deep learning and [bold] everything else"
ERROR = "could not connect to 127.0.0.1: Connection refused (after 3 attempts with a 10 s timeout each)"
EMAIL = "someone.long.address@mail.example.org"
# Too long for any layout at 80 columns: every column folds, and not one character is lost.
HUGE_EMAIL = "someone.with.a.rather.long.address@a.mail.subdomain.of.example.org"
SKILLS = ["Python", "Kubernetes", "Large language model", "Distributed systems", "Generative AI"]


def digest(rt: Runtime, *args: str, columns: int = 80) -> str:
    """The command's output, ``columns`` wide as a terminal would say."""
    done = digest_in(rt, *args, COLUMNS=str(columns))
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def assert_fits(output: str, columns: int = 80) -> None:
    lines = output.splitlines()
    assert lines and max(len(line) for line in lines) <= columns, "\n" + output


def line_with(output: str, text: str) -> str:
    """The one line that holds ``text`` whole."""
    [line] = [line for line in output.splitlines() if text in line]
    return line


def cell(output: str, header: str, next_header: str, row: str) -> str:
    """The cell under ``header`` of the row whose first line holds ``row``: its lines joined, spaces out."""
    lines = output.splitlines()
    left, right = lines[0].index(header), lines[0].index(next_header)
    [first] = [number for number, line in enumerate(lines) if row in line]
    end = next((n for n in range(first + 1, len(lines)) if lines[n][:2].strip()), len(lines))
    return "".join(line[left:right].replace(" ", "") for line in lines[first:end])


@pytest.fixture
def feeds(rt: Runtime) -> tuple[int, int]:
    """A feed with a long name failing for 8 days, and a healthy one due in 8 minutes: their ids."""
    now = datetime.now(UTC)
    with transaction(rt.sessions) as session:
        failing = Source(
            url="http://127.0.0.1:9/feed",
            name=LONG_NAME,
            kind="paper",
            last_status="error",
            last_error=ERROR,
            consecutive_failures=12,
            next_fetch_at=now - timedelta(days=8, minutes=5),
            created_at=now - timedelta(days=30),
        )
        healthy = Source(
            url="https://blog.example.org/feed.xml",
            name="Blog",
            kind="blog",
            last_status="not-modified",
            next_fetch_at=now + timedelta(minutes=8, seconds=30),
            created_at=now - timedelta(days=30),
        )
        session.add_all([failing, healthy])
        session.flush()
        return failing.id, healthy.id


@pytest.fixture
def subscribed(rt: Runtime) -> int:
    """A confirmed weekly subscription with a long address and five skills; its id."""
    with transaction(rt.sessions) as session:
        info = subscribe(
            session,
            EMAIL,
            SKILLS,
            Schedule("weekly", 7, 4, "Europe/Berlin"),
            datetime.now(UTC),
            confirmed=True,
        )
        return info.id


def test_feeds_list_fits_80_columns_with_times_in_words(rt: Runtime, feeds: tuple[int, int]) -> None:
    failing, healthy = feeds

    output = digest(rt, "feeds", "list")

    assert_fits(output)
    assert line_with(output, "fails").split() == [
        "id",
        "name",
        "kind",
        "every",
        "status",
        "fails",
        "next",
        "items",
        "error",
    ]
    assert line_with(output, "overdue 8 d").split()[0] == str(failing)
    assert "paper" in line_with(output, "overdue 8 d") and " 12 " in line_with(output, "overdue 8 d")
    assert line_with(output, "not-modified").split()[:3] == [str(healthy), "Blog", "blog"]
    assert "in 8 min" in line_with(output, "not-modified")
    # Free text wraps (a word longer than its column folds) and keeps markup-like words.
    assert output.count("[bold]") == 1
    for word in (*LONG_NAME.split(), *ERROR.split()):
        assert len(word) > 8 or word in output


def test_feeds_list_uses_the_width_there_is(rt: Runtime, feeds: tuple[int, int]) -> None:
    output = digest(rt, "feeds", "list", columns=300)

    assert_fits(output, 300)
    assert LONG_NAME in output and ERROR in output


def test_subscribers_list_fits_80_columns_and_keeps_the_address_whole(rt: Runtime, subscribed: int) -> None:
    output = digest(rt, "subscribers", "list")

    assert_fits(output)
    row = line_with(output, EMAIL)
    assert row.split()[:3] == [str(subscribed), EMAIL, "weekly"]
    assert re.search(r"\bin \d+ (min|h|d)\s*$", row)
    assert cell(output, "skills", "state", EMAIL) == ", ".join(sorted(SKILLS)).replace(" ", "")
    assert cell(output, "schedule", "skills", EMAIL) == "weeklyfri07:00Europe/Berlin"


def test_an_address_too_long_for_80_columns_folds_whole(rt: Runtime) -> None:
    with transaction(rt.sessions) as session:
        subscribe(
            session, HUGE_EMAIL, SKILLS, Schedule("daily", 7, 0, "UTC"), datetime.now(UTC), confirmed=True
        )

    output = digest(rt, "subscribers", "list")

    assert_fits(output)
    assert "…" not in output
    assert cell(output, "email", "schedule", HUGE_EMAIL[:4]) == HUGE_EMAIL


def test_deliveries_list_fits_80_columns(rt: Runtime, subscribed: int) -> None:
    end = datetime.now(UTC) - timedelta(hours=3, minutes=5)
    with transaction(rt.sessions) as session:
        session.execute(
            insert(Delivery),
            [
                {
                    "subscription_id": subscribed,
                    "window_start": end - timedelta(days=7),
                    "window_end": end,
                    "status": "failed",
                    "attempts": 1,
                    "error": "550 5.1.1 no such user",
                    "finished_at": end,
                    "created_at": end,
                }
            ],
        )

    output = digest(rt, "deliveries", "list")

    assert_fits(output)
    row = line_with(output, EMAIL)
    assert row.split()[1:] == [EMAIL, "weekly", "3", "h", "ago", "failed", "0"]


def test_skills_coverage_fits_80_columns(rt: Runtime, subscribed: int) -> None:
    output = digest(rt, "skills", "coverage")

    assert_fits(output)
    assert "subscribers" in output and "last item" in output
    assert line_with(output, "Python").split()[:2] == ["Python", "1"]


def test_status_fits_80_columns(rt: Runtime, feeds: tuple[int, int]) -> None:
    failing, _ = feeds

    output = digest(rt, "status")

    assert_fits(output)
    # Two tables of feeds, failing and overdue (digest.health), with the same whole headers.
    headers = [line.split() for line in output.splitlines() if "failures" in line]
    assert headers == [["id", "name", "failures", "error"]] * 2
    assert any(line.split()[:1] == [str(failing)] and " 12 " in line for line in output.splitlines())


@pytest.mark.parametrize(
    ("delta", "due", "words"),
    [
        (timedelta(seconds=30), False, "now"),
        (timedelta(minutes=8, seconds=5), True, "in 8 min"),
        (-timedelta(hours=5), False, "5 h ago"),
        (-timedelta(hours=47), True, "overdue 47 h"),
        (-timedelta(days=8, hours=1), True, "overdue 8 d"),
        (timedelta(days=3), False, "in 3 d"),
    ],
)
def test_times_read_in_words(delta: timedelta, due: bool, words: str) -> None:
    now = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)

    assert relative(now + delta, now, due=due) == words
    assert relative(None, now) == "-"
