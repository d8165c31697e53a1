"""Tests for due feeds and next fetch times (digest/sources.py). Pure: ``now`` is passed in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from digest.errors import InvalidInputError
from digest.ingest.sources import (
    MAX_BACKOFF,
    cache_hint,
    check_feed_url,
    check_kind,
    next_fetch_after_failure,
    next_fetch_after_success,
)
from digest.vocabulary import DEFAULT_INTERVALS, MIN_INTERVAL, interval_for, parse_duration

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "url",
    ["http://example.org/feed.xml", "https://blog.example.org/rss?format=xml", "HTTPS://EXAMPLE.ORG/atom"],
)
def test_it_accepts_http_and_https_feed_urls(url: str) -> None:
    assert check_feed_url(url) == url


def test_it_strips_white_space_around_a_feed_url() -> None:
    assert check_feed_url("  https://example.org/feed \n") == "https://example.org/feed"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/feed.xml",
        "javascript:alert(1)",
        "data:text/xml,<rss/>",
        "http://",
        "https:///feed.xml",
        "example.org/feed.xml",
        "//example.org/feed.xml",
        "",
    ],
)
def test_it_refuses_anything_but_an_absolute_http_url(url: str) -> None:
    with pytest.raises(InvalidInputError, match="not a feed URL"):
        check_feed_url(url)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172_800), (" 15M ", 900), ("01h", 3600)],
)
def test_it_reads_a_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "m", "15", "0m", "-5m", "1.5h", "15x", "1w", "h1", "15 m", "1e3s", "fifteen m"]
)
def test_it_refuses_a_malformed_duration(text: str) -> None:
    with pytest.raises(InvalidInputError, match="not a duration"):
        parse_duration(text)


def test_it_refuses_a_duration_of_unicode_digits_that_int_cannot_read() -> None:
    # "²".isdigit() is True but int("²") raises ValueError, which must not escape as a crash.
    with pytest.raises(InvalidInputError, match="not a duration"):
        parse_duration("²m")


@pytest.mark.parametrize("kind", sorted(DEFAULT_INTERVALS))
def test_it_accepts_each_known_kind(kind: str) -> None:
    assert check_kind(kind) == kind


def test_it_refuses_an_unknown_kind() -> None:
    with pytest.raises(InvalidInputError, match="unknown kind"):
        check_kind("podcast")


def test_a_source_uses_its_own_interval_else_its_kinds_default() -> None:
    assert interval_for("news", None) == DEFAULT_INTERVALS["news"]
    assert interval_for("paper", 7200) == 7200


def test_an_interval_is_never_shorter_than_the_minimum() -> None:
    assert interval_for("news", 5) == MIN_INTERVAL


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 900), (1, 900), (2, 1800), (3, 3600), (4, 7200), (7, 57_600), (8, MAX_BACKOFF), (50, MAX_BACKOFF)],
)
def test_back_off_doubles_with_each_failure_and_stops_at_a_day(failures: int, delay: int) -> None:
    assert next_fetch_after_failure(NOW, 900, failures) == NOW + timedelta(seconds=delay)


def test_back_off_caps_at_24_hours() -> None:
    assert MAX_BACKOFF == 24 * 3600
    assert next_fetch_after_failure(NOW, 6 * 3600, 3) == NOW + timedelta(hours=24)
    assert next_fetch_after_failure(NOW, 6 * 3600, 10_000) == NOW + timedelta(hours=24)


@pytest.mark.parametrize("interval", [60, 900, 3600, 6 * 3600])
def test_jitter_stays_within_ten_percent_of_the_interval(interval: int) -> None:
    rng = random.Random(20260504)
    delays = [(next_fetch_after_success(NOW, interval, rng) - NOW).total_seconds() for _ in range(2000)]

    assert all(0.9 * interval <= delay <= 1.1 * interval for delay in delays)
    # It does spread: both sides of the interval are used, not one fixed offset.
    assert min(delays) < 0.95 * interval
    assert max(delays) > 1.05 * interval


def test_jitter_is_reproducible_from_the_random_generator() -> None:
    first = next_fetch_after_success(NOW, 900, random.Random(7))
    second = next_fetch_after_success(NOW, 900, random.Random(7))

    assert first == second


def test_the_publisher_can_ask_for_a_longer_wait_but_not_a_shorter_one() -> None:
    rng = random.Random(1)
    longer = next_fetch_after_success(NOW, 900, rng, publisher_hint=3 * 3600) - NOW
    shorter = next_fetch_after_success(NOW, 900, rng, publisher_hint=60) - NOW
    absurd = next_fetch_after_success(NOW, 900, rng, publisher_hint=90 * 86400) - NOW

    assert timedelta(hours=2.7) <= longer <= timedelta(hours=3.3)
    assert timedelta(seconds=810) <= shorter <= timedelta(seconds=990)
    assert absurd <= timedelta(hours=24 * 1.1)


@pytest.mark.parametrize(
    ("headers", "ttl", "expected"),
    [
        ({"cache-control": "public, max-age=7200"}, None, 7200.0),
        ({"cache-control": "no-cache"}, None, None),
        ({"expires": "Mon, 04 May 2026 15:00:00 GMT"}, None, 3 * 3600.0),
        ({"expires": "not a date"}, None, None),
        ({"expires": "Mon, 04 May 2026 11:00:00 GMT"}, None, None),
        ({}, 60, 3600.0),
        ({"cache-control": "max-age=600"}, 120, 7200.0),
        ({}, None, None),
    ],
)
def test_it_reads_the_publishers_wait_from_cache_headers_and_ttl(
    headers: dict[str, str], ttl: int | None, expected: float | None
) -> None:
    assert cache_hint(headers, ttl, NOW) == expected


def test_retry_after_lengthens_the_back_off_up_to_a_day() -> None:
    assert next_fetch_after_failure(NOW, 900, 1, retry_after=3600) == NOW + timedelta(hours=1)
    assert next_fetch_after_failure(NOW, 900, 1, retry_after=10) == NOW + timedelta(seconds=900)
    assert next_fetch_after_failure(NOW, 900, 1, retry_after=10**9) == NOW + timedelta(hours=24)
