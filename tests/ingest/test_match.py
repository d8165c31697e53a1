"""Tests for text -> skill tags (digest/match.py): a hand-built matcher, then the bundled taxonomy."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from digest.ingest.match import AliasSpec, Matcher, SkillInfo, fold
from digest.ingest.match._fold import TextFolder, nfkc
from digest.ingest.taxonomy import matcher_from, read_bundled
from digest.records import TagMatch

# --- a small matcher built by hand ---------------------------------------------------------------

SKILLS = {
    "python": SkillInfo("Python", "language"),
    "go": SkillInfo("Go", "language"),
    "java": SkillInfo("Java", "language"),
    "javascript": SkillInfo("JavaScript", "language"),
    "c": SkillInfo("C", "language"),
    "cpp": SkillInfo("C++", "language"),
    "csharp": SkillInfo("C#", "language"),
    "dotnet": SkillInfo(".NET", "platform"),
    "aspnet": SkillInfo("ASP.NET", "framework"),
    "nodejs": SkillInfo("Node.js", "platform"),
    "cicd": SkillInfo("CI/CD", "practice"),
    "sklearn": SkillInfo("scikit-learn", "library"),
    "llm": SkillInfo("Large language model", "concept"),
    "deep-learning": SkillInfo("Deep learning", "concept"),
    "kubernetes": SkillInfo("Kubernetes", "platform"),
    "rust": SkillInfo("Rust", "language"),
}
ALIASES = [
    AliasSpec("python", "Python"),
    AliasSpec("python", "Python 3"),
    AliasSpec("python", "python3"),
    AliasSpec("go", "Go", ambiguous=True, case_sensitive=True),
    AliasSpec("go", "Golang"),
    AliasSpec("java", "Java"),
    AliasSpec("javascript", "JavaScript"),
    AliasSpec("c", "C", ambiguous=True, case_sensitive=True),
    AliasSpec("cpp", "C++"),
    AliasSpec("csharp", "C#"),
    AliasSpec("dotnet", ".NET"),
    AliasSpec("aspnet", "ASP.NET"),
    AliasSpec("nodejs", "Node.js"),
    AliasSpec("cicd", "CI/CD"),
    AliasSpec("sklearn", "scikit-learn"),
    AliasSpec("sklearn", "sklearn"),
    AliasSpec("llm", "large language model"),
    AliasSpec("llm", "LLM"),
    AliasSpec("deep-learning", "deep learning"),
    AliasSpec("kubernetes", "Kubernetes"),
    AliasSpec("kubernetes", "k8s"),
    AliasSpec("rust", "Rust", ambiguous=True),
]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(ALIASES, SKILLS, version="test")


def skill_ids(tags: list[TagMatch]) -> set[str]:
    return {tag.skill_id for tag in tags}


def test_it_compiles_every_alias_of_a_known_skill(matcher: Matcher) -> None:
    assert matcher.alias_count == len(ALIASES)
    assert matcher.version == "test"


def test_it_skips_aliases_of_unknown_skills() -> None:
    matcher = Matcher([AliasSpec("nope", "Nope"), AliasSpec("python", "Python")], SKILLS)

    assert matcher.alias_count == 1
    assert matcher.tag("Nope", "") == []


def test_it_reads_python_python_3_12_and_python3_as_one_skill(matcher: Matcher) -> None:
    tags = matcher.tag("", "Python is great; Python 3.12 is faster and python3 is on every box.")

    assert [tag.skill_id for tag in tags] == ["python"]
    assert tags[0].count == 3
    assert tags[0].matched == ("Python", "Python 3.12", "python3")


def test_it_finds_nothing_in_lets_go(matcher: Matcher) -> None:
    assert matcher.tag("", "Ready? Then let's go.") == []


def test_it_finds_nothing_in_a_capitalised_go_without_evidence(matcher: Matcher) -> None:
    assert matcher.tag("Go team!", "Go for it.") == []


def test_it_finds_go_among_other_skills(matcher: Matcher) -> None:
    tags = matcher.tag("", "Go 1.25 is out. We write our services in Go and run them on Kubernetes.")

    assert skill_ids(tags) == {"go", "kubernetes"}


def test_it_finds_go_from_golang_in_the_same_item(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("Go generics", "A Golang tutorial.")) == {"go"}


def test_it_does_not_find_java_inside_javascript(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "Modern JavaScript for everyone")) == {"javascript"}


def test_it_finds_no_c_in_c_suite(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "The C-suite now loves Kubernetes and Python.")) == {
        "kubernetes",
        "python",
    }


def test_it_finds_c_plus_plus_and_not_c(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "Rewriting Python hot loops in C++ for speed")) == {"python", "cpp"}


def test_it_finds_c_sharp_and_not_c(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "Records in C# 12")) == {"csharp"}


def test_it_finds_c_with_evidence_from_another_skill(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "Calling C libraries from Python")) == {"c", "python"}


def test_it_finds_dotnet(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "What is new in .NET 9")) == {"dotnet"}


def test_it_prefers_the_longest_alias_asp_net_over_dotnet(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "Minimal APIs in ASP.NET")) == {"aspnet"}


def test_it_finds_large_language_models_from_a_plural_acronym(matcher: Matcher) -> None:
    tags = matcher.tag("", "LLMs are everywhere")

    assert skill_ids(tags) == {"llm"}
    assert tags[0].matched == ("LLMs",)


def test_it_finds_large_language_models_in_the_plural(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "How large language models reason")) == {"llm"}


def test_it_reads_a_hyphenated_deep_learning_as_deep_learning(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "A deep-learning approach to weather")) == {"deep-learning"}


def test_it_reads_scikit_learn_and_sklearn_as_one_skill(matcher: Matcher) -> None:
    tags = matcher.tag("scikit-learn 1.5 released", "Import it as sklearn.")

    assert [tag.skill_id for tag in tags] == ["sklearn"]
    assert tags[0].count == 2


def test_it_reads_k8s_as_kubernetes(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "Running k8s at home")) == {"kubernetes"}


def test_it_finds_ci_cd_as_one_skill(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "Our CI/CD pipeline got faster")) == {"cicd"}


def test_it_does_not_find_rust_inside_trust(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "We trust Kubernetes with our services")) == {"kubernetes"}


def test_it_finds_an_ambiguous_rust_only_with_evidence(matcher: Matcher) -> None:
    assert matcher.tag("", "The bridge was covered in rust") == []
    assert skill_ids(matcher.tag("", "Porting C++ code to Rust")) == {"cpp", "rust"}


def test_it_finds_node_js_written_without_spaces(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "Streams in Node.js")) == {"nodejs"}


def test_it_does_not_join_node_and_js_across_a_space(matcher: Matcher) -> None:
    assert matcher.tag("", "He wrote Node. js was never mentioned.") == []


def test_a_title_match_sets_in_title_and_scores_higher_than_a_body_match(matcher: Matcher) -> None:
    in_title = matcher.tag("Kubernetes in production", "")
    in_body = matcher.tag("Notes from production", "Kubernetes")

    assert in_title[0].in_title is True
    assert in_body[0].in_title is False
    assert in_title[0].score > in_body[0].score


def test_it_ranks_tags_by_score(matcher: Matcher) -> None:
    tags = matcher.tag("Python tips", "Python, Python and Kubernetes")

    assert [tag.skill_id for tag in tags] == ["python", "kubernetes"]
    assert tags[0].score > tags[1].score
    assert all(0 < tag.score <= 1 for tag in tags)


def test_it_matches_full_width_letters_after_nfkc(matcher: Matcher) -> None:
    tags = matcher.tag("", "Ｐｙｔｈｏｎ tips")

    assert skill_ids(tags) == {"python"}
    assert tags[0].matched == ("Python",)


def test_it_reports_the_skills_name_and_category(matcher: Matcher) -> None:
    (tag,) = matcher.tag("", "Kubernetes")

    assert (tag.name, tag.category) == ("Kubernetes", "platform")


def test_fold_keeps_the_length_so_offsets_map_back_to_the_original() -> None:
    text = "İstanbul’s C++ — “Go” Straße\tnode.js"

    assert len(fold(text)) == len(text)
    assert fold(text) == "istanbul s c++    go  straße node.js"


def test_the_text_fold_lowers_the_non_ascii_capitals_that_keys_hold() -> None:
    folder = TextFolder(["löve", "ekşi sözlük"])
    text = "LÖVE 11 and EKŞİ SÖZLÜK — “ΑΘΗΝΑ”\u00a0İ"

    folded = folder(text)

    assert len(folded) == len(text)
    assert folded.startswith("löve 11 and ekşİ sözlük")
    # Letters no key holds are left as they are: lowering them would change no match.
    assert "ΑΘΗΝΑ" in folded


@pytest.mark.parametrize(
    "parts",
    [
        ["plain", "ASCII, only"],
        ["LÖVE 11", "plain", "“ΑΘΗΝΑ”…"],
        # A lone surrogate folds its own part the slow way and leaves the others as the keys need them.
        ["LÖVE 11", "bad \ud800 SURROGATE Ж", "Ж and EKŞİ"],
    ],
)
def test_a_joined_batch_folds_as_its_parts_do(parts: list[str]) -> None:
    folder = TextFolder(["löve", "ekşi sözlük"])

    assert folder.joined("  \x00  ", parts) == "  \x00  ".join(folder(part) for part in parts)


def test_the_matcher_finds_a_non_ascii_name_in_capitals() -> None:
    matcher = Matcher([AliasSpec("love2d", "LÖVE")], {"love2d": SkillInfo("LÖVE", "framework")})

    assert skill_ids(matcher.tag("LÖVE 11.5 released", "")) == {"love2d"}
    assert skill_ids(matcher.tag("", "a game in Löve")) == {"love2d"}


@pytest.mark.parametrize(
    "text",
    ["plain ascii", "Wait for it…", "no\u00a0break", "ﬁne Ｐｙｔｈｏｎ…", "e\u0301 cafe\u0301…", "“quoted”"],
)
def test_nfkc_takes_shortcuts_with_the_same_result_as_unicodedata(text: str) -> None:
    assert nfkc(text) == unicodedata.normalize("NFKC", text)


def test_only_dotted_i_changes_length_when_lower_cased() -> None:
    changing = [code for code in range(sys.maxunicode + 1) if len(chr(code).lower()) != 1]

    assert changing == [0x130]


def test_it_finds_a_short_name_between_slashes_and_in_a_hashtag(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "C/C++ and #Python tips")) == {"c", "cpp", "python"}


def test_it_finds_no_short_or_ambiguous_name_glued_by_a_hyphen(matcher: Matcher) -> None:
    assert matcher.tag("", "A Go-getter who loves Rust-coloured paint") == []


def test_it_finds_a_long_firm_name_glued_by_a_hyphen(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "Kubernetes-native tooling")) == {"kubernetes"}


def test_it_finds_no_name_inside_an_identifier(matcher: Matcher) -> None:
    assert matcher.tag("", "call my_python_helper") == []


def test_it_absorbs_a_glued_version_after_punctuation(matcher: Matcher) -> None:
    tags = matcher.tag("", "Modules in C++20")

    assert tags[0].matched == ("C++20",)


def test_it_finds_go_from_a_version_number(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("Go 1.25 ships a new garbage collector", "")) == {"go"}


def test_a_year_after_an_ambiguous_name_is_no_evidence(matcher: Matcher) -> None:
    assert matcher.tag("Go 2024: the year in review", "") == []


def test_it_finds_an_ambiguous_name_from_a_context_word(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("", "A new library for Rust")) == {"rust"}


def test_it_finds_an_ambiguous_name_from_a_cue_of_that_skill(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("Rust's crates keep growing", "")) == {"rust"}


def test_a_capitalised_first_word_counts_with_another_skill(matcher: Matcher) -> None:
    assert skill_ids(matcher.tag("Go and Kubernetes in production", "")) == {"go", "kubernetes"}


def test_a_camel_case_form_of_a_case_sensitive_alias_is_evidence() -> None:
    skills = {"cmake": SkillInfo("CMake", "tool")}
    matcher = Matcher([AliasSpec("cmake", "CMake", ambiguous=True, case_sensitive=True)], skills)

    assert skill_ids(matcher.tag("CMake presets", "")) == {"cmake"}
    assert matcher.tag("Cmake presets", "") == []


def test_context_is_no_evidence_for_an_ambiguous_generic_concept() -> None:
    skills = {"server": SkillInfo("Server", "concept"), "python": SkillInfo("Python", "language")}
    aliases = [
        AliasSpec("server", "Server", ambiguous=True, case_sensitive=True),
        AliasSpec("python", "Python"),
    ]
    matcher = Matcher(aliases, skills)

    assert skill_ids(matcher.tag("Python Server code", "")) == {"python"}


def test_it_prefers_the_longest_overlapping_alias_even_if_it_starts_later() -> None:
    skills = {"a": SkillInfo("A", "tool"), "b": SkillInfo("B", "tool")}
    matcher = Matcher([AliasSpec("a", "apache spark"), AliasSpec("b", "spark structured streaming")], skills)

    assert skill_ids(matcher.tag("apache spark structured streaming", "")) == {"b"}


def test_it_matches_a_case_sensitive_plural() -> None:
    skills = {"llm": SkillInfo("LLM", "concept")}
    matcher = Matcher([AliasSpec("llm", "LLM", case_sensitive=True)], skills)

    assert skill_ids(matcher.tag("LLMs", "")) == {"llm"}
    assert matcher.tag("llms", "") == []


# --- the bundled taxonomy --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> Matcher:
    """Compiled like ``taxonomy.compile_matcher``, from the file instead of the database."""
    return matcher_from(read_bundled())


def names(tags: list[TagMatch]) -> set[str]:
    return {tag.name for tag in tags}


def test_the_bundled_taxonomy_compiles_into_thousands_of_aliases(real: Matcher) -> None:
    assert len(real.skills) > 1000
    assert real.alias_count > len(real.skills)
    assert real.version


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        (
            "We fine-tuned an LLM with PyTorch on Kubernetes",
            {"Large language model", "PyTorch", "Kubernetes"},
        ),
        ("Apache Spark 3.5 on AWS", {"Apache Spark", "Amazon Web Services"}),
        ("Building a REST API in Go with PostgreSQL", {"REST", "Go", "PostgreSQL"}),
        (
            "Deep learning for time series forecasting with TensorFlow",
            {"Deep learning", "TensorFlow", "Time series forecasting"},
        ),
        ("Writing a compiler in C++ and Rust", {"C++", "Compiler", "Rust"}),
        ("Spring Boot 3 with Java 21 virtual threads", {"Spring Boot", "Java"}),
        ("Ruby on Rails 8 released", {"Ruby on Rails"}),
        ("scikit-learn 1.5 adds new estimators", {"Scikit-learn"}),
        ("Terraform modules for AWS and Azure", {"Terraform", "Amazon Web Services", "Microsoft Azure"}),
    ],
)
def test_the_bundled_taxonomy_finds_the_skills_a_headline_names(
    real: Matcher, title: str, expected: set[str]
) -> None:
    assert names(real.tag(title, "")) == expected


@pytest.mark.parametrize(
    "title",
    [
        "Our team will go to the conference",
        "Spring is here",
        "The C-suite is worried about costs",
        "Swift is a bird that flies fast",
    ],
)
def test_the_bundled_taxonomy_finds_nothing_in_plain_english(real: Matcher, title: str) -> None:
    assert real.tag(title, "") == []


def test_the_bundled_taxonomy_reads_python_versions_as_python(real: Matcher) -> None:
    tags = real.tag("From Python 2 to Python 3.12", "")

    assert names(tags) == {"Python"}
    assert tags[0].matched == ("Python 2", "Python 3.12")


def test_the_bundled_taxonomy_finds_rust_from_its_borrow_checker(real: Matcher) -> None:
    assert names(real.tag("Rust's borrow checker makes memory bugs rare", "")) == {"Rust"}


def test_the_bundled_taxonomy_finds_go_with_a_version_number(real: Matcher) -> None:
    assert names(real.tag("Go 1.25 ships with a new garbage collector", "")) == {"Go", "Garbage collection"}


def test_the_bundled_taxonomy_finds_docker_as_the_first_word(real: Matcher) -> None:
    assert names(real.tag("Docker and Kubernetes in production", "")) == {"Docker", "Kubernetes"}


def test_the_bundled_taxonomy_finds_react_server_components_as_react(real: Matcher) -> None:
    assert names(real.tag("React Server Components explained for JavaScript developers", "")) == {
        "React",
        "JavaScript",
    }


def test_the_bundled_taxonomy_finds_no_java_in_an_island_holiday(real: Matcher) -> None:
    assert real.tag("She went to Java, Indonesia on holiday", "") == []


def test_the_bundled_taxonomy_finds_no_skill_in_an_apple_eaten(real: Matcher) -> None:
    assert real.tag("I ate an apple and watched the rust on the fence", "") == []


def test_the_bundled_taxonomy_tags_only_the_technologies_of_a_migration_story(real: Matcher) -> None:
    assert names(real.tag("How we migrated our Django app to Python 3.12", "")) == {"Django", "Python"}


# --- issue 4: evidence, URLs, hyphens, offsets and the batch API ----------------------------------

EVIDENCE_SKILLS = {
    **SKILLS,
    "swift": SkillInfo("Swift", "language"),
    "ruby": SkillInfo("Ruby", "language"),
    "kafka": SkillInfo("Apache Kafka", "platform"),
    "spark": SkillInfo("Apache Spark", "framework"),
    "atom": SkillInfo("Atom", "tool"),
    "http": SkillInfo("HTTP", "protocol"),
    "php": SkillInfo("PHP", "language"),
    "stats": SkillInfo("Statistics", "concept"),
    "gpu": SkillInfo("GPU", "hardware"),
}
EVIDENCE_ALIASES = [
    *ALIASES,
    AliasSpec("swift", "Swift", ambiguous=True, case_sensitive=True),
    AliasSpec("ruby", "Ruby", ambiguous=True, case_sensitive=True),
    AliasSpec("kafka", "Kafka", ambiguous=True, case_sensitive=True),
    AliasSpec("spark", "Spark", ambiguous=True, case_sensitive=True),
    AliasSpec("atom", "Atom", ambiguous=True, case_sensitive=True),
    AliasSpec("http", "HTTP"),
    AliasSpec("http", "https"),
    AliasSpec("php", "PHP"),
    AliasSpec("stats", "stats"),
    AliasSpec("gpu", "GPU"),
]


@pytest.fixture(scope="module")
def rich() -> Matcher:
    return Matcher(EVIDENCE_ALIASES, EVIDENCE_SKILLS)


def test_a_programming_word_beside_an_ambiguous_name_is_evidence(rich: Matcher) -> None:
    assert skill_ids(rich.tag("", "Prior work studied 142 Java classes.")) == {"java"}
    assert skill_ids(rich.tag("", "Build web applications with Swift")) == {"swift"}


def test_a_lower_case_homonym_counts_only_as_the_modifier_of_a_programming_word(rich: Matcher) -> None:
    assert skill_ids(rich.tag("", "I wrote a ruby library for feeds.")) == {"ruby"}
    assert rich.tag("", "A ruby ring from the library") == []


def test_an_ambiguous_language_heading_a_title_before_a_colon_is_evidence(rich: Matcher) -> None:
    assert skill_ids(rich.tag("Swift: when to use guard", "")) == {"swift"}
    assert rich.tag("Go 2024: the year in review", "") == []


def test_a_capitalised_neighbour_that_is_no_skill_makes_a_name(rich: Matcher) -> None:
    assert skill_ids(
        rich.tag("", "Peter Kafka says the Python team is happy, and so are its developers.")
    ) == {"python"}


def test_an_initial_homonym_before_a_preposition_is_the_verb(rich: Matcher) -> None:
    assert skill_ids(rich.tag("", "Go to Settings in Kubernetes.")) == {"kubernetes"}


def test_weak_evidence_does_not_count_in_a_title_case_headline(rich: Matcher) -> None:
    assert skill_ids(rich.tag("Virgin Mobile Partners With Kubernetes to Go Mobile-Only Soon", "")) == {
        "kubernetes"
    }


def test_a_capitalised_homonym_has_no_plural(rich: Matcher) -> None:
    assert rich.tag("", "Python developers love David Sparks and his books.") != []
    assert "spark" not in skill_ids(rich.tag("", "Python developers love the Sparks books."))


def test_a_counter_cue_keeps_the_other_reading(rich: Matcher) -> None:
    assert skill_ids(rich.tag("", "A Python library that reads RSS and Atom.")) == {"python"}


def test_nothing_inside_a_url_counts(rich: Matcher) -> None:
    assert rich.tag("", "See https://example.org/python for more.") == []
    assert skill_ids(rich.tag("", "HTTP/2 is here: https://example.org")) == {"http"}


def test_a_url_in_one_item_of_a_batch_hides_no_name_of_another(rich: Matcher) -> None:
    items = [
        ("", "https://example.org/python"),
        ("https://example.org/kubernetes", "Kubernetes and https://go.dev/python"),
        ("", "Python, Kubernetes"),
        ("See https://example.org/", "python.org: Python"),
    ]

    tagged = rich.tag_many(items)

    assert tagged == [rich.tag(title, text) for title, text in items]
    assert [skill_ids(tags) for tags in tagged] == [
        set(),
        {"kubernetes"},
        {"python", "kubernetes"},
        {"python"},
    ]


def test_a_lower_case_language_after_a_dot_is_a_file_extension(rich: Matcher) -> None:
    assert skill_ids(rich.tag("", "An injection in takerevolve.php.")) == {"php"}
    assert rich.tag("", "from scipy.stats import binom") == []


def test_an_unambiguous_acronym_glued_by_a_hyphen_counts(rich: Matcher) -> None:
    assert skill_ids(rich.tag("", "LLM-based and GPU-accelerated tools")) == {"llm", "gpu"}


def test_a_one_letter_name_before_a_dot_and_a_digit_is_a_part_number(rich: Matcher) -> None:
    assert skill_ids(rich.tag("", "A C.2 slot beside Python code")) == {"python"}


def test_matched_text_maps_back_after_normalisation_changes_lengths(rich: Matcher) -> None:
    tags = rich.tag("…ﬁne Ｐｙｔｈｏｎ", "Apple’s … ﬁle Kubernetes.")

    assert {tag.skill_id: tag.matched for tag in tags} == {
        "python": ("Python",),
        "kubernetes": ("Kubernetes",),
    }


def test_tag_many_tags_each_item_as_tag_does(rich: Matcher) -> None:
    items = [
        ("Go 1.25 ships", "Kubernetes"),
        ("", ""),
        ("Ｐｙｔｈｏｎ tips", "Written in C++ … and Rust's crates"),
        ("Peter Kafka", "https://example.org/python"),
    ]

    assert rich.tag_many(items) == [rich.tag(title, text) for title, text in items]
    assert rich.tag_many([]) == []


def test_no_name_spans_two_items_of_a_batch(matcher: Matcher) -> None:
    assert matcher.tag_many([("", "deep"), ("learning", "")]) == [[], []]


# --- issue 15: senses -------------------------------------------------------------------------------------
SENSES = {
    "python": SkillInfo("Python", "language", 1.0),
    "shell": SkillInfo("Shell", "language", 0.9),
    "bash": SkillInfo("Bash", "language", 0.5),
    "alpha": SkillInfo("Alpha", "tool", 0.2),
    "beta": SkillInfo("Beta", "tool", 0.8),
    "polar": SkillInfo("Polar", "language", 0.1),
    "polars": SkillInfo("Polars", "library", 0.9),
    "c": SkillInfo("C", "language", 1.0),
}
SENSE_ALIASES = [
    AliasSpec("python", "Python"),
    AliasSpec("shell", "Bash", ambiguous=True, case_sensitive=True),
    AliasSpec("bash", "Bash", ambiguous=True, case_sensitive=True),
    AliasSpec("alpha", "Zed", ambiguous=True, case_sensitive=True),
    AliasSpec("beta", "Zed", ambiguous=True, case_sensitive=True),
    AliasSpec("polar", "Polar"),
    AliasSpec("polars", "Polars"),
    AliasSpec("c", "C", ambiguous=True, case_sensitive=True),
]


@pytest.fixture(scope="module")
def senses() -> Matcher:
    return Matcher(SENSE_ALIASES, SENSES, version="senses")


def test_of_two_skills_sharing_a_name_the_one_so_named_counts(senses: Matcher) -> None:
    assert skill_ids(senses.tag("", "We write Bash scripts next to the Python code.")) == {"bash", "python"}


def test_of_two_skills_sharing_an_alias_the_more_popular_counts(senses: Matcher) -> None:
    assert skill_ids(senses.tag("", "Our Zed servers run Python.")) == {"beta", "python"}


def test_a_plural_that_is_another_skills_name_is_that_skill(senses: Matcher) -> None:
    assert skill_ids(senses.tag("", "We replaced the old code with Polars.")) == {"polars"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Continuous testing unifies tests and E-values, said the Python folks.", {"python"}),
        ("A set C of graphs; the proof is on GitHub.", set()),
        ("Rewriting C code in Python.", {"c", "python"}),
    ],
)
def test_a_lone_capital_needs_a_language_beside_it(senses: Matcher, text: str, expected: set[str]) -> None:
    assert skill_ids(senses.tag("", text)) == expected


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        ("Testing Gaussian Process with Applications to Super-Resolution", "Code on GitHub.", {"GitHub"}),
        ("", "We ran Gaussian 16 for the DFT calculations in our Python pipeline.", {"Gaussian", "Python"}),
        ("", "Triton orbits the planet backwards; our GPU cluster renders it.", {"GPU"}),
        # "NVIDIA Triton" names NVIDIA too: Triton's parent, at the head of its name (issue 15).
        ("", "NVIDIA Triton serves the models on GPUs.", {"Triton Inference Server", "Nvidia", "GPU"}),
    ],
)
def test_a_word_of_the_other_reading_outweighs_a_programming_word_beside_the_name(
    real: Matcher, title: str, text: str, expected: set[str]
) -> None:
    assert names(real.tag(title, text)) == expected


PARTS = {
    "docker": SkillInfo("Docker", "tool"),
    "docker-image": SkillInfo("Docker Image", "concept", parents=frozenset({"docker"})),
    "google": SkillInfo("Google", "company"),
    "google-cloud": SkillInfo("Google Cloud", "cloud"),
}
PART_ALIASES = [
    AliasSpec("docker", "Docker"),
    AliasSpec("docker-image", "Docker image"),
    AliasSpec("google", "Google"),
    AliasSpec("google-cloud", "Google Cloud"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Docker images are scanned before they reach the registry.", {"docker", "docker-image"}),
        ("We moved the jobs to Google Cloud last year.", {"google-cloud"}),
    ],
)
def test_a_longer_name_implies_its_parent_named_at_its_head(text: str, expected: set[str]) -> None:
    # Issue 15: "Docker images" is about Docker; Google is no parent of Google Cloud, so it stays out.
    assert skill_ids(Matcher(PART_ALIASES, PARTS).tag("", text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Two technology names in running text vouch for each other (issue 15)...
        ("Scala is still used for Spark jobs at many companies.", {"Scala", "Apache Spark"}),
        ("Cypress component tests run in Chrome.", {"cypressio", "Chrome"}),
        # ...but not names in a list, which is how people are named.
        ("Ray and Julia went to the beach.", set()),
        ("Ray, Julia and Chef went home.", set()),
    ],
)
def test_two_technology_names_vouch_for_each_other_unless_listed(
    real: Matcher, text: str, expected: set[str]
) -> None:
    assert names(real.tag("", text)) == expected
