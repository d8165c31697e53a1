"""What folding near-duplicate stories (issue 16) costs a digest window.

A window of N candidates (titles and leads of realistic length, one story in ten told twice) is read once
per skill and cached (``selection.WindowCache``), then ranked per subscriber. Figures, from one run:
- fingerprints per second (paid once per window read);
- ``rank`` with folding against the baseline ``rank`` over the same candidates with every fingerprint
  empty of title words, which skips the clustering (paid per digest).
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from digest.deliver.selection import Candidate, rank
from digest.ingest.dedupe import Fingerprint, fingerprint
from digest.records import ItemForDigest

# Titles draw words Zipf-like from a vocabulary of 5,000, with common small words mixed in, as headlines do.
VOCABULARY = [f"word{n}" for n in range(5000)]
WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
SMALL = ("the", "a", "for", "in", "of", "and", "to", "with")
NOW = datetime(2026, 11, 16, 8, tzinfo=UTC)


def candidates(count: int, rng: random.Random) -> list[Candidate]:
    found = []
    for number in range(count):
        story = number - number % 2 if number % 10 < 2 else number
        local = random.Random(story)
        title = " ".join([*local.choices(VOCABULARY, WEIGHTS, k=6), *local.sample(SMALL, 3)])
        lead = " ".join(local.choices(VOCABULARY, WEIGHTS, k=40))
        item = ItemForDigest(
            item_id=number,
            title=title,
            url=f"https://example.com/{number}",
            summary=lead,
            source_name=f"feed {rng.randrange(30)}",
            source_kind=rng.choice(("news", "blog", "paper")),
            published_at=NOW - timedelta(minutes=number),
            ingested_at=NOW - timedelta(minutes=number),
            skill_id="s",
            matched=("x",),
            in_title=False,
            score=rng.random(),
        )
        found.append(Candidate(item, f"k{number}", "S", "s", rng.random(), fingerprint(title, lead, NOW)))
    return found


def best_of(repeats: int, action: object) -> float:
    assert callable(action)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    rows = candidates(arguments.candidates, random.Random(1))
    printing = best_of(
        arguments.repeats, lambda: [fingerprint(c.item.title, c.item.summary, NOW) for c in rows]
    )
    bare = [
        replace(c, fingerprint=Fingerprint(c.fingerprint.simhash, frozenset(), frozenset(), NOW))
        for c in rows
    ]
    folded_s = best_of(arguments.repeats, lambda: rank(rows, 20))
    baseline_s = best_of(arguments.repeats, lambda: rank(bare, 20))
    shown, rest = rank(rows, 10_000)
    result = {
        "candidates": arguments.candidates,
        "fingerprints_per_s": round(arguments.candidates / printing),
        "rank_with_folding_ms": round(folded_s * 1000, 2),
        "rank_baseline_ms": round(baseline_s * 1000, 2),
        "ratio": round(folded_s / baseline_s, 2),
        "stories_after_folding": len(shown) + len(rest),
    }
    print(f"fingerprints: {result['fingerprints_per_s']}/s (once per window read)")
    print(
        f"rank {arguments.candidates}: {result['rank_with_folding_ms']} ms with folding, "
        f"{result['rank_baseline_ms']} ms baseline"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
