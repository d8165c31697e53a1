"""Digests rendered per second with the shared fragments kept (issue 18) beside the same without, same run.

Contents are built in memory, as a slot's would be: ``--items`` items tagged with one of 50 skills, each
of ``--digests`` subscribers following 1-5 skills in one of eight time zones, hourly, daily or weekly;
a digest shows the best 20 items of its skills in its window (the default ``DIGEST_MAX_ITEMS``).

Baseline: ``Composer(fragments=0)``, every entry rendered for every digest (what a digest cost before).
Measured: ``Composer()``, starting empty, so its first digests pay for the fragments the others reuse.
Both render subject, text and inlined HTML (``Composer.digest``); every pair of emails is compared byte
for byte. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from digest.deliver.compose import Composer
from digest.records import ComposedEmail, DigestContent, DigestSection, ItemForDigest

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ZONES = (
    "UTC", "Europe/London", "Europe/Berlin", "Europe/Helsinki", "America/New_York",
    "America/Los_Angeles", "Asia/Tokyo", "Australia/Brisbane",
)  # fmt: skip
WINDOWS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}
CADENCES = ("hourly", "daily", "daily", "daily", "weekly")
WORDS = (
    "scaling", "notes", "lessons", "release", "benchmark", "guide", "migration", "security", "patterns",
    "production", "observability", "latency", "costs", "open", "model", "cluster", "pipeline", "review",
)  # fmt: skip
KINDS = ("news", "blog", "paper")
SKILLS = 50
CAP = 20
BASE = "https://skills.example"


def main() -> None:
    """Build the contents, render them cold and with fragments kept, print the ratio and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=2_000)
    parser.add_argument("--items", type=int, default=3_000)
    args = parser.parse_args()
    contents = build(args.digests, args.items, random.Random(18))
    cold_seconds, cold = timed(Composer(fragments=0), contents)
    warm_composer = Composer()
    warm_seconds, warm = timed(warm_composer, contents)
    identical = all(
        (a.subject, a.text, a.html, a.body_hash) == (b.subject, b.text, b.html, b.body_hash)
        for a, b in zip(cold, warm, strict=True)
    )
    cold_rate, warm_rate = len(contents) / cold_seconds, len(contents) / warm_seconds
    print(f"uncached     {cold_rate:7.1f} digests/s ({1000 / cold_rate:.2f} ms a digest)")
    print(f"fragments    {warm_rate:7.1f} digests/s ({1000 / warm_rate:.2f} ms a digest)")
    print(f"ratio        {warm_rate / cold_rate:7.2f}x   byte-identical: {identical}")
    print(f"kept         {len(warm_composer.fragments)} fragments")
    print(
        json.dumps(
            {
                "digests": len(contents),
                "items": args.items,
                "uncached_digests_per_s": round(cold_rate, 1),
                "cached_digests_per_s": round(warm_rate, 1),
                "ratio": round(warm_rate / cold_rate, 2),
                "fragments_kept": len(warm_composer.fragments),
                "byte_identical": identical,
            }
        )
    )


def timed(composer: Composer, contents: Sequence[DigestContent]) -> tuple[float, list[ComposedEmail]]:
    started = time.perf_counter()
    emails = [composer.digest(content) for content in contents]
    return time.perf_counter() - started, emails


def build(digests: int, items: int, rng: random.Random) -> list[DigestContent]:
    """The contents of ``digests`` subscribers' digests over ``items`` tagged items."""
    by_skill: dict[int, list[ItemForDigest]] = {skill: [] for skill in range(SKILLS)}
    for number in range(items):
        skill = rng.randrange(SKILLS)
        published = NOW - timedelta(minutes=rng.randint(1, 7 * 24 * 60))
        by_skill[skill].append(
            ItemForDigest(
                item_id=number,
                title=f"Skill {skill} {' '.join(rng.sample(WORDS, 5))}",
                url=f"https://site{number % 97}.example/posts/{number}",
                summary=" ".join(rng.choice(WORDS) for _ in range(45)),
                source_name=f"Source {number % 60}",
                source_kind=KINDS[number % 3],
                published_at=published,
                ingested_at=published,
                skill_id=f"skill-{skill}",
                matched=(f"Skill {skill}", f"skill{skill}"),
                in_title=rng.random() < 0.5,
                score=round(rng.random(), 3),
            )
        )
    return [_digest(number, by_skill, rng) for number in range(digests)]


def _digest(number: int, by_skill: dict[int, list[ItemForDigest]], rng: random.Random) -> DigestContent:
    cadence = rng.choice(CADENCES)
    start = NOW - WINDOWS[cadence]
    followed = rng.sample(range(SKILLS), rng.randint(1, 5))
    candidates = [
        item
        for skill in followed
        for item in by_skill[skill]
        if item.published_at is not None and start <= item.published_at < NOW
    ]
    shown = sorted(candidates, key=lambda item: (-item.score, item.item_id))[:CAP]
    sections = tuple(
        DigestSection(
            f"skill-{skill}",
            f"Skill {skill}",
            f"skill-{skill}",
            tuple(item for item in shown if item.skill_id == f"skill-{skill}"),
        )
        for skill in followed
        if any(item.skill_id == f"skill-{skill}" for item in shown)
    )
    return DigestContent(
        delivery_id=number,
        email=f"reader{number}@readers.example",
        cadence=cadence,
        timezone=rng.choice(ZONES),
        window_start=start,
        window_end=NOW,
        sections=sections,
        more=len(candidates) - len(shown),
        unsubscribe_url=f"{BASE}/u/token{number}",
        manage_url=f"{BASE}/manage/token{number}",
        base_url=BASE,
    )


if __name__ == "__main__":
    main()
