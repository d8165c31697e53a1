"""How well the bundled taxonomy knows the modern stack (issue 15), on the gold set in tests/data/gold/.

Two parts, split by a hash of each text (tests/data/gold/README.md): ``dev`` (tuned against) and
``heldout`` (never looked at while tuning). For each part:

- names: how many of the skill names people use in 2026 job postings and headlines resolve the way
  ``digest skills show NAME`` resolves them (``digest.ingest.skills.resolve_skill``);
- recall: of the skills a sentence names (``expect``, resolved the same way), the share the matcher tags;
  a name that does not resolve is a miss;
- wrong sense: tags of a ``forbid`` skill (a homonym read the wrong way: "a ray of light", "go to"), per
  sentence of the part, and per sentence that has a trap.

The matcher is compiled from the database the way ``taxonomy.compile_matcher`` does it in production.
Run ``python -m bench.taxonomy_eval [--show N] [--part dev] [--figures-only]``; it ends with one JSON line.
While tuning, run ``--part dev`` only; look at the held-out part with ``--figures-only``, so its misses
never reach the loop.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from digest.db import make_engine, make_sessions, transaction, upgrade
from digest.errors import NotFoundError
from digest.ingest.match import Matcher
from digest.ingest.skills import resolve_skill
from digest.ingest.taxonomy import compile_matcher, load, read_bundled

GOLD = Path(__file__).parent.parent / "tests" / "data" / "gold"
PARTS = ("dev", "heldout")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def held_out(text: str) -> bool:
    """The split rule: a third of the texts, chosen by their SHA-256, are held out."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 3 == 0


def read_sentences(part: str) -> list[dict[str, Any]]:
    path = GOLD / f"sentences-{part}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_names(part: str) -> list[str]:
    path = GOLD / f"names-{part}.txt"
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class Report:
    """The figures of one part, with the names behind its errors."""

    part: str
    names: int = 0
    unresolved: list[str] = field(default_factory=list)
    sentences: int = 0
    trap_sentences: int = 0
    expected: int = 0
    found: int = 0
    misses: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def wrong_sense(self) -> float:
        return sum(self.wrong.values()) / self.sentences if self.sentences else 0.0

    @property
    def wrong_per_trap(self) -> float:
        return sum(self.wrong.values()) / self.trap_sentences if self.trap_sentences else 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "names_unresolved": len(self.unresolved),
            "sentences": self.sentences,
            "recall": round(self.recall, 3),
            "wrong_sense": round(self.wrong_sense, 3),
            "wrong_sense_per_trap_sentence": round(self.wrong_per_trap, 3),
        }

    def text(self, show: int) -> str:
        def worst(counts: Counter[str]) -> str:
            return ", ".join(f"{name} ×{count}" for name, count in counts.most_common(show)) or "none"

        summary = (
            f"{self.part}: names {self.names - len(self.unresolved)}/{self.names} resolve; "
            f"{self.sentences} sentences, recall {self.recall:.3f} ({self.found}/{self.expected}), "
            f"wrong sense {sum(self.wrong.values())} ({self.wrong_sense:.1%} of sentences, "
            f"{self.wrong_per_trap:.1%} of {self.trap_sentences} with a trap)"
        )
        if show == 0:
            return summary
        return (
            f"{summary}\n"
            f"  unresolved: {', '.join(self.unresolved[:show]) or 'none'}\n"
            f"  misses: {worst(self.misses)}\n"
            f"  wrong sense: {worst(self.wrong)}"
        )


def _resolve(session: Session, name: str) -> str | None:
    try:
        return resolve_skill(session, name).id
    except NotFoundError:
        return None


def evaluate(session: Session, matcher: Matcher, part: str) -> Report:
    """The figures of one part of the gold set against the taxonomy loaded in ``session``."""
    report = Report(part)
    names = read_names(part)
    report.names = len(names)
    report.unresolved = [name for name in names if _resolve(session, name) is None]
    for row in read_sentences(part):
        report.sentences += 1
        report.trap_sentences += bool(row["forbid"])
        tagged = {tag.skill_id for tag in matcher.tag("", row["text"])}
        for name in row["expect"]:
            report.expected += 1
            if _resolve(session, name) in tagged:
                report.found += 1
            else:
                report.misses[name] += 1
        for name in row["forbid"]:
            skill_id = _resolve(session, name)
            if skill_id is not None and skill_id in tagged:
                report.wrong[name] += 1
    return report


def evaluate_bundled(parts: tuple[str, ...] = PARTS) -> list[Report]:
    """Load the bundled taxonomy into a fresh SQLite database and evaluate each part."""
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/eval.db")
        try:
            upgrade(engine)
            sessions = make_sessions(engine)
            with transaction(sessions) as session:
                load(session, read_bundled(), NOW)
            with transaction(sessions) as session:
                matcher = compile_matcher(session)
                return [evaluate(session, matcher, part) for part in parts]
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--show", type=int, default=25, help="how many misses and wrong senses to list")
    parser.add_argument(
        "--part", choices=PARTS, action="append", help="evaluate only this part (repeatable; default both)"
    )
    parser.add_argument(
        "--figures-only", action="store_true", help="print the figures, not the names behind the errors"
    )
    args = parser.parse_args()
    reports = evaluate_bundled(tuple(args.part or PARTS))
    for report in reports:
        print(report.text(0 if args.figures_only else args.show))
    print(json.dumps({report.part: report.figures() for report in reports}))


if __name__ == "__main__":
    main()
