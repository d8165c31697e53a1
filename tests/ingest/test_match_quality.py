"""Matcher quality on a hand-labelled gold set of real feed sentences (tests/data/gold/README.md).

Each sentence is tagged as body text with an empty title. A tag whose name is in ``expect`` is a true
positive; any other tag is a false positive (generic junk such as "App" counts against precision too); an
``expect`` name that is not tagged is a miss. ``reject`` lists the traps a keyword matcher falls into; they
are reported separately so a regression on them is easy to spot. Run with ``-s`` to see the report.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from digest.ingest.match import Matcher
from digest.ingest.taxonomy import matcher_from, read_bundled

GOLD = Path(__file__).parent.parent / "data" / "gold" / "matcher-gold.jsonl"
MIN_SENTENCES = 300
MIN_PRECISION = 0.95
MIN_RECALL = 0.90
WORST = 15


@dataclass
class Score:
    """Counts over the whole gold set, with the names behind the errors."""

    sentences: int = 0
    true_positives: int = 0
    false_positives: Counter[str] = field(default_factory=Counter)
    misses: Counter[str] = field(default_factory=Counter)
    rejected_hits: Counter[str] = field(default_factory=Counter)

    @property
    def precision(self) -> float:
        tagged = self.true_positives + sum(self.false_positives.values())
        return self.true_positives / tagged if tagged else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + sum(self.misses.values())
        return self.true_positives / expected if expected else 1.0

    def report(self) -> str:
        def worst(counts: Counter[str]) -> str:
            return ", ".join(f"{name} ×{count}" for name, count in counts.most_common(WORST)) or "none"

        return (
            f"gold set: {self.sentences} sentences; precision {self.precision:.3f} "
            f"(TP {self.true_positives}, FP {sum(self.false_positives.values())}), "
            f"recall {self.recall:.3f} (FN {sum(self.misses.values())})\n"
            f"  worst false positives: {worst(self.false_positives)}\n"
            f"  worst misses: {worst(self.misses)}\n"
            f"  rejected names tagged: {worst(self.rejected_hits)}"
        )


def read_gold() -> list[dict[str, Any]]:
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def gold() -> list[dict[str, Any]]:
    return read_gold()


@pytest.fixture(scope="module")
def real() -> Matcher:
    """Compiled like ``taxonomy.compile_matcher``, from the bundled file instead of the database."""
    return matcher_from(read_bundled())


def score(matcher: Matcher, gold: list[dict[str, Any]]) -> Score:
    result = Score(sentences=len(gold))
    for row in gold:
        tagged = {tag.name for tag in matcher.tag("", row["text"])}
        expected = set(row["expect"])
        result.true_positives += len(tagged & expected)
        result.false_positives.update(tagged - expected)
        result.misses.update(expected - tagged)
        result.rejected_hits.update(tagged & set(row["reject"]))
    return result


def test_the_gold_set_is_well_formed(gold: list[dict[str, Any]]) -> None:
    names = {entity.name for entity in read_bundled().entities}

    assert len(gold) >= MIN_SENTENCES
    assert len({row["id"] for row in gold}) == len(gold)
    assert sum(1 for row in gold if row["expect"]) > len(gold) / 2
    for row in gold:
        assert set(row) == {"id", "source", "text", "expect", "reject"}, row["id"]
        assert row["text"].strip(), row["id"]
        unknown = (set(row["expect"]) | set(row["reject"])) - names
        assert not unknown, f"{row['id']}: not in the taxonomy: {sorted(unknown)}"
        assert not set(row["expect"]) & set(row["reject"]), row["id"]


def test_the_matcher_meets_the_precision_and_recall_targets(
    real: Matcher, gold: list[dict[str, Any]]
) -> None:
    result = score(real, gold)
    report = result.report()
    print("\n" + report)

    assert result.precision >= MIN_PRECISION and result.recall >= MIN_RECALL, (
        f"targets: precision >= {MIN_PRECISION}, recall >= {MIN_RECALL}\n{report}"
    )
