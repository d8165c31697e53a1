"""Loading, editing and re-tagging the taxonomy, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.db import transaction
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.errors import InvalidInputError
from digest.ingest import crawl, taxonomy
from digest.ingest.skills import resolve_skill, search_skills
from digest.ingest.taxonomy import audit
from digest.models import Item, Skill, SkillAlias, Source, SubscriptionSkill, Tag
from digest.runtime import Runtime
from tests.support import Route, feed_server, rss

SMALL = Path(__file__).parent.parent / "data" / "taxonomy-small.jsonl"

YAML = """
_meta: {version: "yaml-1"}
entities:
  - key: quantum-widgets
    name: Quantum widgets
    slug: quantum-widgets
    category: concept
    aliases: [{text: Quantum widgets}, {text: qwidgets}]
  - key: flux-db
    name: FluxDB
    slug: fluxdb
    category: database
    aliases: [{text: FluxDB}, {text: Flux, ambiguous: true, case_sensitive: true}]
"""


def ingest(rt: Runtime, now: datetime, *items: tuple[str, str, str]) -> None:
    with feed_server() as server:
        server.routes["/feed"] = Route(rss(*items))
        with transaction(rt.sessions) as session:
            source = Source(url=server.url("/feed"), name="t", kind="news", next_fetch_at=now, created_at=now)
            session.add(source)
            session.flush()
            source_id = source.id
        crawl.refresh_and_tag(rt.sessions, rt.fetcher, rt.matchers, source_id, now, random.Random(1))


def tags_of(rt: Runtime, title: str) -> set[str]:
    with transaction(rt.sessions) as session:
        return set(
            session.scalars(
                select(Skill.name)
                .join(Tag, Tag.skill_id == Skill.id)
                .join(Item, Item.id == Tag.item_id)
                .where(Item.title == title)
            )
        )


def test_a_yaml_taxonomy_loads_once_with_ids_from_its_keys(
    rt: Runtime, tmp_path: Path, now: datetime
) -> None:
    path = tmp_path / "extra.yaml"
    path.write_text(YAML)

    with transaction(rt.sessions) as session:
        first = taxonomy.load(session, taxonomy.read_taxonomy(path), now)
    with transaction(rt.sessions) as session:
        again = taxonomy.load(session, taxonomy.read_taxonomy(path), now)
        widgets = resolve_skill(session, "QWIDGETS")
        stats = taxonomy.stats(session)

    assert (first.changed, again.changed) == (True, False)
    assert widgets.id == taxonomy.skill_id_for("quantum-widgets") and widgets.name == "Quantum widgets"
    assert stats.version == "yaml-1" and stats.ambiguous >= 1


def test_a_broken_taxonomy_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("entities: [unclosed")

    with pytest.raises(InvalidInputError, match=r"broken\.yaml"):
        taxonomy.read_taxonomy(path)


def test_an_admin_alias_tags_and_marks_every_item_for_retagging(rt: Runtime, now: datetime) -> None:
    ingest(rt, now, ("a1", "Notes on the serpent language", ""))
    assert tags_of(rt, "Notes on the serpent language") == set()

    with transaction(rt.sessions) as session:
        before = taxonomy.loaded_version(session)
        taxonomy.add_alias(session, resolve_skill(session, "python"), "serpent language", now)
    stale = crawl.stale_items(rt.sessions, rt.matchers, None)
    crawl.tag_items(rt.sessions, rt.matchers, stale)

    with transaction(rt.sessions) as session:
        assert taxonomy.loaded_version(session) != before
        with pytest.raises(InvalidInputError, match="already has"):
            taxonomy.add_alias(session, resolve_skill(session, "python"), "serpent language", now)
    assert tags_of(rt, "Notes on the serpent language") == {"Python"}
    assert crawl.stale_items(rt.sessions, rt.matchers, None) == []


def test_a_merge_redirects_the_old_id_and_moves_tags_subscriptions_and_aliases(
    rt: Runtime, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        subscription = subscribe(
            session, "reader@example.com", ["MLOps"], Schedule("daily", 8, 0, "UTC"), now, confirmed=True
        ).id
        mlops_id = resolve_skill(session, "MLOps").id
    ingest(rt, now, ("m1", "MLOps in practice", ""))

    with transaction(rt.sessions) as session:
        taxonomy.merge(
            session, resolve_skill(session, "MLOps"), resolve_skill(session, "machine learning"), now
        )
    ingest(rt, now + timedelta(hours=1), ("m2", "An MLOps checklist", ""))

    with transaction(rt.sessions) as session:
        assert resolve_skill(session, mlops_id).name == "Machine learning"
        followed = set(
            session.scalars(
                select(SubscriptionSkill.skill_id).where(SubscriptionSkill.subscription_id == subscription)
            )
        )
        assert followed == {resolve_skill(session, "machine learning").id}
        assert "MLOps" not in {hit.name for hit in search_skills(session, "mlops")}
    assert tags_of(rt, "MLOps in practice") == {"Machine learning"}
    assert tags_of(rt, "An MLOps checklist") == {"Machine learning"}


def test_merging_a_skill_into_itself_is_refused(rt: Runtime, now: datetime) -> None:
    with transaction(rt.sessions) as session:
        python = resolve_skill(session, "python")
        with pytest.raises(InvalidInputError, match="itself"):
            taxonomy.merge(session, python, python, now)


def test_search_ranks_exact_then_prefix_and_forgives_a_typo(rt: Runtime) -> None:
    with transaction(rt.sessions) as session:
        exact = search_skills(session, "go")
        prefix = search_skills(session, "kube")
        typo = search_skills(session, "pythn")
        nothing = search_skills(session, "   ")

    assert exact[0].name == "Go"
    assert prefix[0].name == "Kubernetes"
    assert typo[0].name == "Python"
    assert nothing == []


def _small_without(tmp_path: Path, dropped: set[str], extra_alias: tuple[str, str] | None = None) -> Path:
    """The small taxonomy as a new file without the ``dropped`` keys, one entity given an extra alias."""
    lines = SMALL.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    header["_meta"]["version"] = "test-small-2"
    header["_meta"]["by_source"] = {"onet": {"kept": 1, "dropped": 5}}
    kept = [header]
    for line in lines[1:]:
        entity = json.loads(line)
        if entity["key"] in dropped:
            continue
        if extra_alias and entity["key"] == extra_alias[0]:
            entity["aliases"].append({"text": extra_alias[1], "ambiguous": False, "case_sensitive": False})
        kept.append(entity)
    path = tmp_path / "small-2.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in kept), encoding="utf-8")
    return path


def test_a_replacing_load_redirects_a_dropped_skill_and_its_subscriptions_to_the_nearest(
    rt: Runtime, tmp_path: Path, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        subscription = subscribe(
            session,
            "reader@example.com",
            ["MLOps", "Rust"],
            Schedule("daily", 8, 0, "UTC"),
            now,
            confirmed=True,
        ).id
        mlops_id, rust_id = resolve_skill(session, "MLOps").id, resolve_skill(session, "Rust").id
    # MLOps goes, and machine learning now also answers to "MLOps"; Rust goes with no skill near it.
    path = _small_without(tmp_path, {"mlops", "rust"}, ("machine-learning", "MLOps"))

    with transaction(rt.sessions) as session:
        result = taxonomy.load(session, taxonomy.read_taxonomy(path), now, replace=True)
    with transaction(rt.sessions) as session:
        machine_learning = resolve_skill(session, "machine learning")
        followed = set(
            session.scalars(
                select(SubscriptionSkill.skill_id).where(SubscriptionSkill.subscription_id == subscription)
            )
        )
        rust = resolve_skill(session, rust_id)
        figures = taxonomy.stats(session)

        assert (result.redirected, result.retired) == (1, 1)
        assert resolve_skill(session, mlops_id).id == machine_learning.id
        assert followed == {machine_learning.id, rust_id}
        assert (
            rust.name == "Rust"
            and not session.scalars(select(SkillAlias).where(SkillAlias.skill_id == rust_id)).all()
        )
        assert figures.by_source == {"onet": {"kept": 1, "dropped": 5}}
    ingest(rt, now, ("r1", "Rust 1.80 is out", ""))
    assert tags_of(rt, "Rust 1.80 is out") == set()


def test_an_added_file_leaves_the_skills_it_does_not_name(rt: Runtime, tmp_path: Path, now: datetime) -> None:
    path = _small_without(tmp_path, {"rust"})

    with transaction(rt.sessions) as session:
        result = taxonomy.load(session, taxonomy.read_taxonomy(path), now)
    ingest(rt, now, ("r2", "Rust 1.80 is out", ""))

    assert (result.redirected, result.retired) == (0, 0)
    assert tags_of(rt, "Rust 1.80 is out") == {"Rust"}


def test_search_puts_the_more_popular_of_two_equal_matches_first(
    rt: Runtime, tmp_path: Path, now: datetime
) -> None:
    path = tmp_path / "popular.yaml"
    path.write_text(
        """
_meta: {version: "popular-1"}
entities:
  - {key: fluxa, name: Fluxa, slug: fluxa, category: tool, aliases: [{text: Fluxa}], popularity: 0.1}
  - {key: fluxb, name: Fluxb, slug: fluxb, category: tool, aliases: [{text: Fluxb}], popularity: 0.9}
"""
    )
    with transaction(rt.sessions) as session:
        taxonomy.load(session, taxonomy.read_taxonomy(path), now)
        hits = [hit.name for hit in search_skills(session, "flux")]

    assert hits[:2] == ["Fluxb", "Fluxa"]


def test_the_audit_reports_risky_aliases_silent_skills_and_one_source_skills(
    rt: Runtime, now: datetime
) -> None:
    ingest(rt, now, *((f"p{n}", f"Python tip {n}", "") for n in range(10)))
    with transaction(rt.sessions) as session:
        taxonomy.add_alias(session, resolve_skill(session, "python"), "snake", now)
        taxonomy.add_alias(session, resolve_skill(session, "rust"), "Golang", now)
        report = audit.audit(session, now + timedelta(days=1), audit.read_words())
        skills = len(session.scalars(select(Skill)).all())

    assert ("snake", "Python") in {(risky.alias, risky.skill) for risky in report.words_without_rule_examples}
    assert ("golang", ("Go", "Rust")) in {
        (shared.alias, shared.skills) for shared in report.shared_alias_examples
    }
    assert report.silent_skills == skills - 1 and "Python" not in report.silent_skill_examples
    assert [(row.skill, row.tags, row.share) for row in report.one_source_examples] == [("Python", 10, 1.0)]
