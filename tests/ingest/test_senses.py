"""Sense rules of dictionary-word aliases (issue 15, item 3): the rules file, the bundle built with it,
and the audit that reports none without a rule."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from digest.db import transaction
from digest.errors import InvalidInputError
from digest.ingest import taxonomy
from digest.ingest.match import Matcher
from digest.ingest.taxonomy import audit, matcher_from, read_bundled
from digest.ingest.taxonomy.senses import RULES, read_senses, shape_of
from digest.runtime import Runtime

# A sample of the rules: (alias, skill key, category, source, rule).
SAMPLE = (
    ("Selenium", "selenium", "tool", "taxonomy", "cased"),  # capitalised product names
    ("Tableau", "tableau", "tool", "taxonomy", "cased"),
    ("PuTTY", "putty", "tool", "taxonomy", "cased"),
    ("SAX", "simple-api-for-xml", "tool", "taxonomy", "exact"),  # acronyms
    ("STRIDE", "stride", "concept", "taxonomy", "exact"),
    ("Portfolio", "portfolio", "concept", "taxonomy", "evidence"),  # concept words
    ("sanity", "sanity", "tool", "taxonomy", "evidence"),  # lower-case brand names
    ("Grace", "grace", "language", "taxonomy", "evidence"),  # entry: obscure language, everyday name
    ("Migration", "migration", "tool", "taxonomy", "evidence"),  # entry: O*NET class, common noun
    ("inc", "php", "language", "taxonomy", "never"),  # entry: no name of the skill
    ("rake", "ruby", "language", "taxonomy", "never"),
    ("span", "html", "", "stackoverflow", "never"),  # the Stack Overflow file carries no flags
    ("Malware", "malware", "concept", "taxonomy", "one-sense"),  # entry: the word is the skill
    ("python", "python", "language", "taxonomy", "one-sense"),
)


@pytest.mark.parametrize(("alias", "key", "category", "source", "rule"), SAMPLE)
def test_a_sample_of_the_sense_rules(alias: str, key: str, category: str, source: str, rule: str) -> None:
    found = read_senses().rule_for(alias, key, category, source)

    assert found is not None and found.rule == rule and found.why


def test_every_rule_of_the_file_says_why_and_every_rule_is_used() -> None:
    senses = read_senses()
    used = {rule.rule for rule in senses.entries.values()} | {cls.rule for cls in senses.classes}

    assert all(rule.why.strip() for rule in senses.entries.values())
    assert all(cls.why.strip() for cls in senses.classes)
    assert used == set(RULES)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("entries: [{alias: Foo, rule: exact}]", "entry 1 needs a why"),
        ("entries: [{alias: Foo, rule: maybe, why: x}]", "rule 'maybe'"),
        ("classes: [{name: c, shapes: [round], rule: exact, why: x}]", "shapes among"),
        ("entries: [{alias: a, rule: exact, why: x}, {alias: A, rule: never, why: y}]", "repeats"),
        ("[1, 2]", "expected a mapping"),
    ],
)
def test_a_malformed_rules_file_is_refused_with_its_place(
    tmp_path: Path, document: str, message: str
) -> None:
    path = tmp_path / "senses.yaml"
    path.write_text(document, encoding="utf-8")

    with pytest.raises(InvalidInputError, match=message):
        read_senses(path)


@pytest.mark.parametrize(
    ("alias", "shape"), [("SAX", "upper"), ("Python", "capitalised"), ("spaCy", "mixed"), ("pip", "lower")]
)
def test_an_alias_has_the_shape_of_its_capitals(alias: str, shape: str) -> None:
    assert shape_of(alias) == shape


@pytest.fixture(scope="module")
def bundled() -> Matcher:
    return matcher_from(read_bundled())


@pytest.mark.parametrize(
    ("text", "skill", "tagged"),
    [
        ("We drive the browser with Selenium and pytest.", "Selenium", True),
        ("The soil lacks selenium, the farmers said.", "Selenium", False),
        ("Open the session in PuTTY first.", "PuTTY", True),
        ("Seal the window with putty.", "PuTTY", False),
        ("The ransomware and other malware spread by email.", "Malware", True),
        ("Dinner cost 40 dollars, tax inc.", "PHP", False),
        ("She said grace before dinner.", "Grace", False),
    ],
)
def test_the_bundle_follows_the_rules(bundled: Matcher, text: str, skill: str, tagged: bool) -> None:
    assert (skill in {tag.name for tag in bundled.tag("", text)}) is tagged


def test_the_bundled_taxonomy_has_no_dictionary_word_without_a_rule(rt: Runtime, now: datetime) -> None:
    with transaction(rt.sessions) as session:
        taxonomy.load(session, read_bundled(), now, replace=True)
    with transaction(rt.sessions) as session:
        report = audit.audit(session, now, audit.read_words())

    assert report.words_without_rule == 0, report.words_without_rule_examples
