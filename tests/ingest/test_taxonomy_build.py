"""Tests for the taxonomy builder (on cut-down sources) and for the shipped bundle."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from digest.ingest.match import Matcher
from digest.ingest.taxonomy import Entity, matcher_from, read_bundled
from tools.taxonomy import build as taxonomy_build
from tools.taxonomy import curated, modern
from tools.taxonomy.build import BuildResult
from tools.taxonomy.registry import CATEGORIES, Registry

SOURCES = Path(__file__).parent.parent / "data" / "taxonomy-sources"
PACKAGES = Path(__file__).parent.parent / "data" / "package-popularity"
SHIPPED = Path(__file__).parent.parent.parent / "digest" / "data"

MUST_HAVE = (
    "AI infrastructure", "machine learning", "generative AI", "deep learning", "distributed systems",
    "Python", "large language models", "LLM", "LLMs", "MLOps", "Kubernetes", "k8s", "AWS", "Azure",
    "Google Cloud", "cloud computing", "PostgreSQL", "Postgres", "MySQL", "MongoDB", "Redis", "SQLite",
    "Rust", "Go", "Golang", "Java", "JavaScript", "TypeScript", "C", "C++", "C#", "Ruby", "PHP", "Swift",
    "Kotlin", "Scala", "R", "Julia", "React", "Vue.js", "Angular", "Django", "Flask", "FastAPI", "Spring",
    "Ruby on Rails", "Node.js", ".NET", "TensorFlow", "PyTorch", "scikit-learn", "sklearn", "pandas",
    "NumPy", "Apache Spark", "Kafka", "Airflow", "Docker", "Terraform", "Ansible", "Prometheus", "Grafana",
    "GraphQL", "REST", "microservices", "DevOps", "CI/CD", "data engineering", "data science",
    "natural language processing", "NLP", "computer vision", "reinforcement learning", "transformers",
    "retrieval-augmented generation", "RAG", "vector database", "GPU", "CUDA",
)  # fmt: skip


@pytest.fixture(scope="module")
def result() -> BuildResult:
    return taxonomy_build.build(SOURCES, PACKAGES)


@pytest.fixture(scope="module")
def shipped() -> list[dict[str, Any]]:
    text = (SHIPPED / "taxonomy.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def by_key(result: BuildResult, key: str) -> Entity:
    return next(entity for entity in result.entities if entity.key == key)


def alias_flags(entity: Entity) -> dict[str, tuple[bool, bool]]:
    return {alias.text: (alias.ambiguous, alias.case_sensitive) for alias in entity.aliases}


def test_it_gives_the_same_id_on_every_build(result: BuildResult) -> None:
    again = taxonomy_build.build(SOURCES, PACKAGES)

    assert [(e.key, e.id) for e in again.entities] == [(e.key, e.id) for e in result.entities]
    assert by_key(result, "python").id == hashlib.sha256(b"python").hexdigest()[:16]


def test_it_writes_byte_identical_files_when_rebuilt(result: BuildResult, tmp_path: Path) -> None:
    taxonomy_build.write(result, tmp_path / "a")
    taxonomy_build.write(taxonomy_build.build(SOURCES, PACKAGES), tmp_path / "b")

    for name in ("taxonomy.jsonl", "taxonomy-stackoverflow.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_it_versions_the_bundle_by_the_hash_of_its_entity_lines(result: BuildResult, tmp_path: Path) -> None:
    taxonomy_build.write(result, tmp_path)
    header, *lines = (tmp_path / "taxonomy.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    meta = json.loads(header)["_meta"]

    digest = hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()[:8]
    assert meta["format"] == "digest-taxonomy/1"
    assert meta["version"] == f"{taxonomy_build.SNAPSHOT_DATE}-{digest}"
    assert {source["name"] for source in meta["sources"]} >= {"github-topics", "linguist", "esco", "onet"}


def test_it_merges_postgresql_from_every_source_into_one_entity(result: BuildResult) -> None:
    postgres = [e for e in result.entities if "PostgreSQL" in alias_flags(e)]

    assert [e.key for e in postgres] == ["postgresql"]
    assert set(postgres[0].sources) >= {"github-topics", "devicon", "esco", "onet"}
    assert "Postgres" in alias_flags(postgres[0])


def test_it_mines_acronyms_from_onet_names(result: BuildResult) -> None:
    ec2 = by_key(result, "amazon-elastic-compute-cloud")

    assert ec2.name == "Amazon Elastic Compute Cloud"
    assert "EC2" in alias_flags(ec2)


def test_it_puts_the_name_first_and_drops_short_lower_case_aliases(result: BuildResult) -> None:
    python = by_key(result, "python")

    assert python.aliases[0].text == "Python"
    assert "Python 3" in alias_flags(python)
    assert "py" not in {alias.text.lower() for alias in python.aliases}


def test_it_marks_homonyms_ambiguous_and_case_sensitive(result: BuildResult) -> None:
    assert alias_flags(by_key(result, "go"))["Go"] == (True, True)
    assert alias_flags(by_key(result, "go"))["Golang"] == (False, False)
    assert alias_flags(by_key(result, "r"))["R"] == (True, True)
    assert alias_flags(by_key(result, "kubernetes"))["Kubernetes"] == (False, False)


def test_it_marks_an_alias_shared_by_two_entities_ambiguous_on_both(result: BuildResult) -> None:
    # Linguist gives Emacs Lisp the alias "emacs", which is also the editor's name.
    sharing = [
        e.key for e in result.entities if any(a.text.lower() == "emacs" and a.ambiguous for a in e.aliases)
    ]

    assert sharing == ["emacs", "emacs-lisp"]
    assert alias_flags(by_key(result, "emacs-lisp"))["Emacs Lisp"] == (False, False)


def test_it_leaves_another_entitys_name_to_that_entity(result: BuildResult) -> None:
    # ESCO lists the test runner "Mocha" among JavaScript's alternative labels.
    assert "Mocha" not in alias_flags(by_key(result, "javascript"))
    assert "Mocha" in alias_flags(by_key(result, "mocha"))


def test_it_resolves_every_parent_and_related_id(result: BuildResult) -> None:
    ids = {entity.id for entity in result.entities}

    assert all(set(e.parents) | set(e.related) <= ids for e in result.entities)
    assert by_key(result, "llm").parents == tuple(
        sorted(by_key(result, k).id for k in ("deep-learning", "generative-ai", "nlp"))
    )


def test_it_keeps_stack_overflow_aliases_out_of_the_main_bundle(result: BuildResult, tmp_path: Path) -> None:
    taxonomy_build.write(result, tmp_path)
    main = (tmp_path / "taxonomy.jsonl").read_text(encoding="utf-8")
    extra = [
        json.loads(line) for line in (tmp_path / "taxonomy-stackoverflow.jsonl").read_text().splitlines()
    ]

    assert "stackoverflow" not in main.lower()
    assert "py3k" not in main
    assert extra[0]["_meta"]["licence"] == "CC-BY-SA-4.0"
    assert {"entity": by_key(result, "python").id, "alias": "py3k", "source": "stackoverflow"} in extra[1:]


def test_the_shipped_bundle_has_at_least_3000_entities(shipped: list[dict[str, Any]]) -> None:
    assert shipped[0]["_meta"]["licence"] == "CC-BY-4.0 AND MIT"
    assert len(shipped) - 1 >= 3000


def test_the_shipped_bundle_covers_the_must_have_skills(shipped: list[dict[str, Any]]) -> None:
    owners: dict[str, set[str]] = {}
    for entity in shipped[1:]:
        for alias in entity["aliases"]:
            owners.setdefault(alias["text"].lower(), set()).add(entity["key"])

    missing = [skill for skill in MUST_HAVE if len(owners.get(skill.lower(), ())) != 1]
    assert missing == []


def test_the_shipped_bundle_has_valid_unique_entities(shipped: list[dict[str, Any]]) -> None:
    entities = shipped[1:]
    ids = {entity["id"] for entity in entities}

    assert len(ids) == len(entities)
    for entity in entities:
        assert entity["id"] == hashlib.sha256(entity["key"].encode()).hexdigest()[:16]
        assert entity["category"] in CATEGORIES
        assert len(entity["description"]) <= 200
        assert entity["aliases"][0]["text"] == entity["name"]
        assert set(entity["parents"]) | set(entity["related"]) <= ids


# --- issue 15: curated data as data, the modern stack, popularity, senses ---------------------------------
def test_every_curated_entry_says_why() -> None:
    tables = curated.load()
    concepts = modern.read_concepts()

    assert len(tables.curated) >= 70 and len(concepts) >= 300
    assert all(entry.why.strip() for entry in tables.curated)
    assert all(concept.why.strip() for concept in concepts)
    assert ("react", "real estate application contract transmission") in tables.wrong_aliases
    assert {"ray", "snowflake", "celery", "triton"} <= tables.homonyms


def test_a_curated_entry_without_a_why_is_refused(tmp_path: Path) -> None:
    (tmp_path / "concepts.yaml").write_text("- {name: RLHF, aliases: [reinforcement learning]}\n")
    (tmp_path / "curated.yaml").write_text("- {key: ai, name: AI}\n")

    with pytest.raises(ValueError, match="entry 1 needs a name and a why"):
        modern.read_concepts(tmp_path / "concepts.yaml")
    with pytest.raises(ValueError, match="entry 1 needs a key and a why"):
        curated.load(tmp_path)


def test_it_admits_a_simple_icons_brand_only_when_a_package_confirms_it(result: BuildResult) -> None:
    names = {entity.name for entity in result.entities}

    # npm scope @huggingface, PyPI langchain and ray; Magic by its "magic-sdk" package.
    assert {"Hugging Face", "LangChain", "Ray", "Magic"} <= names
    # A consumer brand no package of its name confirms, and an everyday word.
    assert not {"Spotify", "Task"} & names


def test_a_dictionary_word_among_a_brands_names_needs_evidence(result: BuildResult) -> None:
    assert alias_flags(by_key(result, "magic"))["Magic"] == (True, True)
    assert alias_flags(by_key(result, "ray"))["Ray"] == (True, True)
    assert alias_flags(by_key(result, "hugging-face"))["Hugging Face"] == (False, False)


def test_it_adds_cncf_concepts_but_no_one_word_everyday_term(result: BuildResult) -> None:
    names = {entity.name.lower() for entity in result.entities}

    assert "service mesh" in names
    assert "cncf-glossary" in by_key(result, "zero-trust").sources  # merged into the curated concept
    assert "scalability" not in names


def test_it_adds_the_curated_concepts_of_the_modern_stack(result: BuildResult) -> None:
    rlhf = by_key(result, "rlhf")

    assert "reinforcement learning from human feedback" in alias_flags(rlhf)
    assert rlhf.sources == ("curated",)
    assert {"kv-cache", "feature-store", "sbom", "lora"} <= {entity.key for entity in result.entities}


def test_each_skill_has_a_popularity_from_its_sources(result: BuildResult) -> None:
    assert 0 < by_key(result, "python").popularity <= 1
    assert by_key(result, "pydantic").popularity > 0.9  # PyPI rank 16
    assert by_key(result, "python").popularity > by_key(result, "magic").popularity


def test_it_drops_onet_commodity_products_nobody_uses(result: BuildResult) -> None:
    keys = {entity.key for entity in result.entities}

    # Used in several occupations, but in no tech class, not hot, and no package or topic names it.
    assert "1cadcam-unigraphics" not in keys
    # A kind of software in a tech class stays ("Clustering software" -> Clustering is not in the cut-down
    # sources; Amazon EC2 is hot).
    assert "amazon-elastic-compute-cloud" in keys


@pytest.fixture(scope="module")
def bundled() -> Matcher:
    return matcher_from(read_bundled())


WRONG_ALIASES = (
    ("react", "Real estate application contract transmission"),
    ("react", "Real estate application contract transmission REACT"),
    ("python", "rusthon"),
)


@pytest.mark.parametrize(("key", "alias"), WRONG_ALIASES)
def test_the_shipped_bundle_lacks_the_wrong_aliases(
    shipped: list[dict[str, Any]], key: str, alias: str
) -> None:
    entity = next(entity for entity in shipped[1:] if entity["key"] == key)

    assert alias.lower() not in {known["text"].lower() for known in entity["aliases"]}


@pytest.mark.parametrize(
    "text",
    [
        "We act on every complaint within a day.",
        "The acts were recorded in the minutes.",
        "Act now, the poster said.",
    ],
)
def test_act_the_crm_is_not_the_verb(bundled: Matcher, text: str) -> None:
    assert "Act!" not in {tag.name for tag in bundled.tag("", text)}


def test_the_shipped_bundle_knows_the_modern_stack(shipped: list[dict[str, Any]]) -> None:
    names = {alias["text"].lower() for entity in shipped[1:] for alias in entity["aliases"]}

    for name in ("hugging face", "langchain", "databricks", "rlhf", "onnx", "pydantic", "kv cache", "sbom"):
        assert name in names, name
    assert all("popularity" in entity for entity in shipped[1:])


def test_a_capitalised_name_that_is_a_word_counts_as_written_and_in_lower_case_with_evidence(
    result: BuildResult,
) -> None:
    # digest/data/senses.yaml: capitalised product names are "cased" (issue 15, item 3).
    flags = alias_flags(by_key(result, "haystack"))

    assert flags["Haystack"] == (False, True)
    assert flags["haystack"] == (True, True)


def test_a_skill_named_for_a_kind_of_another_is_under_it() -> None:
    # words.yaml kind_words: "penetration testing tool" is a kind of penetration testing (issue 15).
    registry = Registry()
    testing = registry.create("Penetration testing", "concept", 1, "curated")
    tool = registry.create("penetration testing tool", "tool", 1, "onet")
    sql = registry.create("SQL", "database", 1, "curated")
    server = registry.create("SQL Server", "database", 1, "curated")

    taxonomy_build._kind_parents(registry)

    assert tool.parents == {testing.key} and not testing.parents
    assert sql.key not in server.parents  # not_kinds
