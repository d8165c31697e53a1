"""Loading, editing and re-tagging the taxonomy, on SQLite and PostgreSQL."""

from __future__ import annotations

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
from digest.models import Item, Skill, Source, SubscriptionSkill, Tag
from digest.runtime import Runtime
from tests.support import Route, feed_server, rss

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
