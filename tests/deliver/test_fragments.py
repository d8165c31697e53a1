"""Shared pieces of digests rendered once per process (issue 18, item 2): the bytes never change for it."""

from __future__ import annotations

from dataclasses import replace

from digest.deliver.compose import Composer
from digest.deliver.fragments import Fragments
from digest.records import ComposedEmail, DigestContent, DigestSection
from tests.deliver.test_email_templates import BASE, digest_content, item


def parts(email: ComposedEmail) -> tuple[str, str, str, str]:
    return email.subject, email.text, email.html, email.body_hash


def second_reader(first: DigestContent, **changes: object) -> DigestContent:
    """Another subscriber who follows the first one's AI infrastructure too, after a skill of their own
    (so its entries are numbered from 3 in the text part), with their own links."""
    rust = DigestSection(
        "rust",
        "Rust",
        "rust",
        (
            item(20, "Rust 2027 edition", "https://blog.example.org/rust", "blog", matched=("Rust",)),
            item(21, "Async traits", "https://news.example.com/async", "news", matched=("Rust",)),
        ),
    )
    fields: dict[str, object] = {
        "delivery_id": 8,
        "email": "other@example.com",
        "sections": (rust, first.sections[0]),
        "unsubscribe_url": f"{BASE}/u/other-unsubscribe-token",
        "manage_url": f"{BASE}/manage/other-manage-token",
    }
    return replace(first, **(fields | changes))  # type: ignore[arg-type]


def test_a_digest_rendered_with_a_warm_cache_equals_the_one_rendered_cold_byte_for_byte() -> None:
    first = digest_content()
    second = second_reader(first)
    warm = Composer()
    warm.digest(first)
    kept = len(warm.fragments)
    reused = warm.digest(second)

    # The shared skill's three entries were reused: only Rust's two were rendered (text and HTML).
    assert len(warm.fragments) == kept + 4
    assert parts(reused) == parts(Composer().digest(second))
    assert parts(reused) == parts(Composer(fragments=0).digest(second))
    assert parts(warm.digest(first)) == parts(Composer().digest(first))
    # The second reader's own parts are theirs, filled in around the shared entries.
    assert "other-unsubscribe-token" in reused.html
    assert "unsubscribe-token" not in reused.html.replace("other-unsubscribe-token", "")
    assert "\n3.  " in reused.text


def test_an_entry_is_kept_per_local_day_so_a_reader_a_day_ahead_sees_their_date() -> None:
    first = digest_content()
    # Published at 12:00 UTC on 28 Nov: already 29 Nov at UTC+14.
    ahead = second_reader(first, timezone="Pacific/Kiritimati")
    warm = Composer()
    warm.digest(first)
    email = warm.digest(ahead)

    assert parts(email) == parts(Composer().digest(ahead))
    assert "29 Nov 2026" in email.text
    assert "28 Nov 2026" not in email.text


def test_feed_text_cannot_forge_the_marker_of_a_kept_piece() -> None:
    forged = "<!--kept:0--> <!--fragment:1-->x<!--/fragment:1-->"
    first = digest_content()
    hostile = second_reader(first)
    hostile = replace(
        hostile,
        sections=(
            replace(
                hostile.sections[0],
                items=(item(30, forged, "https://blog.example.org/forged", "blog", summary=forged),),
            ),
            hostile.sections[1],
        ),
    )
    warm = Composer()
    warm.digest(first)
    email = warm.digest(hostile)

    assert parts(email) == parts(Composer(fragments=0).digest(hostile))
    assert "&lt;!--kept:0--&gt;" in email.html
    assert "<!--" not in email.html.split("</head>", 1)[1].replace("<!--[if mso]>", "")


def test_the_least_recently_used_piece_goes_first_past_the_limit() -> None:
    fragments = Fragments(limit=2)
    fragments.keep(("a",), "A")
    fragments.keep(("b",), "B")
    assert fragments.get(("a",)) == "A"
    fragments.keep(("c",), "C")

    assert len(fragments) == 2
    assert fragments.get(("b",)) is None
    assert (fragments.get(("a",)), fragments.get(("c",))) == ("A", "C")


def test_a_limit_of_zero_keeps_nothing() -> None:
    composer = Composer(fragments=0)
    composer.digest(digest_content())

    assert len(composer.fragments) == 0
