"""Near-duplicate stories (digest/ingest/dedupe.py) measured on a labelled set of story pairs.

``tests/data/story_pairs.jsonl`` was written for this project before the thresholds were chosen: pairs of
(title, lead, published) labelled the same story or not, with the trap cases that matter (consecutive
versions, numbered newsletters, boilerplate advisories, same title with different text). The thresholds
were then chosen on it, so ``tests/data/story_pairs_heldout.jsonl`` (its first line says how it was built)
was written afterwards and never tuned on: precision must hold there too. Figures: docs/performance.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from digest.ingest import dedupe

PAIRS = Path(__file__).parent.parent / "data" / "story_pairs.jsonl"
HELD_OUT = Path(__file__).parent.parent / "data" / "story_pairs_heldout.jsonl"
NOW = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def _print(side: dict[str, Any]) -> dedupe.Fingerprint:
    return dedupe.fingerprint(side["title"], side["lead"], datetime.fromisoformat(side["published"]))


def judged(path: Path = PAIRS) -> list[tuple[bool, bool]]:
    """(labelled the same story, folded) per pair; a line without a label is the file's note."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(row["same"], dedupe.near(_print(row["a"]), _print(row["b"]))) for row in rows if "same" in row]


def test_two_different_stories_never_merge_on_the_labelled_set() -> None:
    results = judged()
    merged = [same for same, folded in results if folded]

    precision = sum(merged) / len(merged)
    assert len(results) >= 40 and sum(not same for same, _ in results) >= 25
    assert precision >= 0.95
    assert all(merged)


def test_most_copies_of_one_story_are_folded() -> None:
    results = judged()
    copies = [folded for same, folded in results if same]

    assert sum(copies) / len(copies) >= 0.75


def test_two_different_stories_never_merge_on_the_held_out_set() -> None:
    results = judged(HELD_OUT)
    merged = [same for same, folded in results if folded]

    assert len(results) >= 60 and sum(not same for same, _ in results) >= 30
    assert sum(merged) / len(merged) >= 0.95
    assert all(merged)


def test_half_the_copies_of_one_story_are_folded_on_the_held_out_set() -> None:
    # Measured 14 of 26 (0.54): the held-out copies are harder than the tuning set's (paraphrases, HN
    # descriptions as leads, "Show HN:" prefixes). A floor against regressions, not a target.
    copies = [folded for same, folded in judged(HELD_OUT) if same]

    assert sum(copies) / len(copies) >= 0.5


def test_clusters_join_copies_transitively_and_keep_the_first_key() -> None:
    lead = "Autocast and a gradient scaler halved my epoch time on one GPU."
    prints = {
        "dev": dedupe.fingerprint("Mixed precision in PyTorch", lead, NOW),
        "other": dedupe.fingerprint("Kubernetes 1.35 drops cgroup v1", "The release removes old code.", NOW),
        "medium": dedupe.fingerprint("Mixed precision in PyTorch", lead + " Cross-posted.", NOW),
        "later": dedupe.fingerprint("Mixed precision in PyTorch", lead, NOW + timedelta(days=9)),
    }

    assert dedupe.clusters(prints) == {"dev": "dev", "other": "other", "medium": "dev", "later": "later"}


def test_versions_and_numbers_keep_stories_apart() -> None:
    a = dedupe.fingerprint("Kubernetes 1.31.2 released", "A patch release.", NOW)
    b = dedupe.fingerprint("Kubernetes 1.31.3 released", "A patch release.", NOW)

    assert dedupe.words("C++ and C# and Node.js 22.1") == ["c++", "and", "c#", "and", "node.js", "22.1"]
    assert not dedupe.near(a, b)
