"""Tests for signed, purpose-bound links (digest/tokens.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from digest.errors import InvalidInputError, LinkExpiredError
from digest.tokens import CONFIRM, MANAGE, UNSUBSCRIBE, VIEW, make_token, make_until, read_token, read_until

SECRET = "a-test-secret-that-is-long-enough"
PAYLOAD = {"subscriber": 42, "email": "ada@example.org"}


def test_a_token_reads_back_to_its_payload() -> None:
    token = make_token(SECRET, UNSUBSCRIBE, PAYLOAD)

    assert read_token(SECRET, UNSUBSCRIBE, token) == PAYLOAD


def test_a_token_is_safe_to_put_in_a_url() -> None:
    token = make_token(SECRET, MANAGE, PAYLOAD)

    assert all(c.isascii() and (c.isalnum() or c in "-_.") for c in token)


@pytest.mark.parametrize(
    ("made_for", "read_for"), [(UNSUBSCRIBE, MANAGE), (MANAGE, CONFIRM), (CONFIRM, UNSUBSCRIBE)]
)
def test_a_token_for_one_purpose_is_refused_for_another(made_for: str, read_for: str) -> None:
    token = make_token(SECRET, made_for, PAYLOAD)

    with pytest.raises(InvalidInputError, match="not valid"):
        read_token(SECRET, read_for, token)


def test_a_tampered_token_is_refused() -> None:
    token = make_token(SECRET, UNSUBSCRIBE, PAYLOAD)
    payload, rest = token.split(".", 1)
    forged = make_token(SECRET, UNSUBSCRIBE, {**PAYLOAD, "subscriber": 43}).split(".", 1)[0]

    with pytest.raises(InvalidInputError, match="not valid"):
        read_token(SECRET, UNSUBSCRIBE, f"{forged}.{rest}")
    with pytest.raises(InvalidInputError, match="not valid"):
        read_token(SECRET, UNSUBSCRIBE, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    with pytest.raises(InvalidInputError, match="not valid"):
        read_token(SECRET, UNSUBSCRIBE, payload)


@pytest.mark.parametrize("garbage", ["", "not-a-token", "a.b.c", "...."])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidInputError):
        read_token(SECRET, UNSUBSCRIBE, garbage)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = make_token("another-secret-entirely", UNSUBSCRIBE, PAYLOAD)

    with pytest.raises(InvalidInputError, match="not valid"):
        read_token(SECRET, UNSUBSCRIBE, token)


def test_a_token_older_than_max_age_has_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    token = make_token(SECRET, CONFIRM, PAYLOAD)
    later = time.time() + 2 * 24 * 3600
    monkeypatch.setattr(time, "time", lambda: later)

    with pytest.raises(InvalidInputError, match="expired"):
        read_token(SECRET, CONFIRM, token, max_age=24 * 3600)


def test_a_token_younger_than_max_age_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    token = make_token(SECRET, CONFIRM, PAYLOAD)
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)

    assert read_token(SECRET, CONFIRM, token, max_age=24 * 3600) == PAYLOAD


def test_a_token_without_max_age_never_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token = make_token(SECRET, UNSUBSCRIBE, PAYLOAD)
    later = time.time() + 10 * 365 * 24 * 3600
    monkeypatch.setattr(time, "time", lambda: later)

    assert read_token(SECRET, UNSUBSCRIBE, token) == PAYLOAD


def test_a_negative_max_age_refuses_even_a_fresh_token() -> None:
    token = make_token(SECRET, CONFIRM, PAYLOAD)

    with pytest.raises(InvalidInputError, match="expired"):
        read_token(SECRET, CONFIRM, token, max_age=-1)


def test_a_validly_signed_payload_that_is_not_an_object_is_refused() -> None:
    token = make_token(SECRET, MANAGE, [1, 2, 3])  # type: ignore[arg-type]

    with pytest.raises(InvalidInputError, match="not valid"):
        read_token(SECRET, MANAGE, token)


def test_an_unsubscribe_link_is_the_same_every_time_so_a_replay_hashes_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = make_token(SECRET, UNSUBSCRIBE, PAYLOAD)
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)

    assert make_token(SECRET, UNSUBSCRIBE, PAYLOAD) == first
    assert make_token(SECRET, CONFIRM, PAYLOAD) != make_token(SECRET, CONFIRM, {**PAYLOAD, "n": 1})


def test_a_token_with_a_deadline_reads_until_the_deadline_on_the_caller_s_clock() -> None:
    deadline = datetime(2026, 12, 16, 6, 0, tzinfo=UTC)
    token = make_until(SECRET, VIEW, {"d": 7}, deadline)

    assert read_until(SECRET, VIEW, token, deadline) == ({"d": 7}, deadline)
    assert make_until(SECRET, VIEW, {"d": 7}, deadline) == token  # deterministic: part of a digest's bytes
    with pytest.raises(LinkExpiredError, match="expired") as expired:
        read_until(SECRET, VIEW, token, deadline + timedelta(seconds=1))
    assert expired.value.until == deadline
    with pytest.raises(InvalidInputError, match="not valid"):
        read_until(SECRET, VIEW, make_token(SECRET, VIEW, {"d": 7}), deadline)
