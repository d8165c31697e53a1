"""Evidence: whether an ambiguous name ("Swift", "Ruby", "Go") means the technology where it stands.

Strong evidence makes a skill count on its own: an unambiguous alias of the skill, a version ("Go 1.25"),
a camel-case form ("CMake"), a cue of that skill anywhere in the item ("Rust's crates"), a programming word
right beside the name ("Java programs", "a ruby library", "applications with Julia") or the name heading a
title before a colon ("Swift: When to use guard", "in Elixir:", for languages and frameworks only).

Weak evidence is context in the item: a context word ("developers"), another skill with strong evidence,
or two names that may count this way and vouch for each other, not in a list ("Scala is still used for
Spark jobs", but not "Ray and Julia"; issue 15). It counts only for a capitalised name read in running
text: not a lower-case word ("pass", "rust"), not a word of a Title Case headline and not part of a
person's or a product's name (a capitalised neighbour that is not a skill: "Peter Kafka", "Julia Lawall",
"Go To Page"). It never counts for a generic concept ("Server"), nor where a counter-cue names the other
reading (Atom beside RSS is the feed format).
"""

from __future__ import annotations

from collections.abc import Collection
from itertools import pairwise
from typing import NamedTuple

from digest.ingest.match._fold import separate
from digest.ingest.match._keys import Entry, SkillInfo
from digest.records import TagMatch

TITLE_WEIGHT = 3
SCORE_SCALE = 8.0
CONTEXT = ""
COUNTER = "!"
GENERIC = frozenset({"concept"})
# A context word in the item is weak evidence that an ambiguous name is meant as technology.
CONTEXT_WORDS = (
    "programming", "programmer", "programmers", "language", "framework", "frameworks", "library",
    "libraries", "compiler", "deploy", "deployed", "deploying", "cluster", "clusters", "api", "apis",
    "open source", "open-source", "github", "code", "codebase", "developer", "developers", "sdk",
    "runtime", "repository", "software",
    # The modern stack (issue 15): words of ML, data and infrastructure prose around a tool's name.
    "inference", "gpu", "gpus", "server", "servers", "pipeline", "pipelines",
    "database", "databases", "containers", "ci", "workflow", "workflows", "dashboards", "frontend",
    "backend", "endpoint", "endpoints", "workers", "deployment", "deployments", "manifests", "bundles",
    "orchestration", "kernel", "kernels", "microservices", "serverless",
)  # fmt: skip
# Right beside a name (two words before, three after) these are strong evidence: "Java programs", "Swift
# protocols", "a ruby library", "Build web applications with Julia".
NEAR_WORDS = frozenset(
    {
        *CONTEXT_WORDS, "program", "programs", "app", "apps", "application", "applications", "project",
        "projects", "class", "classes", "protocol", "protocols", "types", "compiling", "compiled",
        "coding", "gem", "gems", "plugin", "plugins", "package", "packages", "module", "modules",
        "function", "functions", "bug", "bugs", "hacker", "hackers", "ecosystem", "browser", "user", "users",
        "script", "scripts", "syntax", "generics", "structs", "enums", "interpreter", "toolchain",
        # A model's name beside "model(s)" (issue 15: "Anthropic's Claude models").
        "model", "models",
    }
)  # fmt: skip
# Cues of one skill, keyed by its name: "Rust's crates", "Go's goroutines".
CUES: dict[str, tuple[str, ...]] = {
    "rust": ("crate", "crates", "cargo", "borrow checker", "rustc", "rustacean", "rustaceans"),
    "go": ("goroutine", "goroutines", "gopher", "gophers"),
    "docker": ("dockerfile", "container", "containers"),
    # Container tools name the sense of "containers" (issue 15): "Podman runs rootless containers".
    "containers": ("docker", "podman", "kubernetes", "k8s", "containerd", "rootless", "dockerfile"),
    "react": ("jsx", "component", "components", "hooks"),
    "pandas": ("dataframe", "dataframes", "data", "csv"),
    "git": ("commit", "commits", "rebase", "repo", "repos"),
    "swift": (
        "cocoa",
        "xcode",
        "swiftui",
        "objective-c",
        "enum",
        "enums",
        "protocol",
        "protocols",
        "optionals",
    ),
    "ruby": ("rubygems", "rubyist", "rubyists", "irb", "bundler"),
}
# Counter-cues: words of the other reading of a homonym. Atom beside RSS is the feed format, not the editor.
COUNTER_CUES: dict[str, tuple[str, ...]] = {
    "atom": ("rss", "opml", "feed", "feeds", "syndication"),
    # Triton is also Neptune's moon (issue 15); Neptune is also Amazon's graph database, hence the cue.
    "triton inference server": ("moon", "moons", "neptune", "planet", "orbit", "orbits"),
    # Gaussian the chemistry package, not the distribution (issue 15: arXiv titles topped the index).
    "gaussian": (
        "process",
        "processes",
        "distribution",
        "noise",
        "mixture",
        "kernel",
        "random",
        "prior",
        "model",
    ),
}
# Categories whose names head blog titles before a colon ("Swift: ...").
_HEADED = frozenset({"language", "framework", "library"})
# Capitalised at the start of a sentence only, so no part of a name: "In Swift", "With Ruby".
_FUNCTION_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "by", "for", "from", "how", "in", "into", "is", "of", "on", "or", "the"}
    | {"to", "what", "when", "why", "with"}
)
# After a homonym at the start of a sentence these make it the verb: "Go to Settings", "Go with the flow".
_VERB_FOLLOWERS = frozenset(
    {"to", "with", "for", "from", "into", "onto", "on", "off", "ahead", "back", "up", "out", "away"}
)
_SENTENCE_ENDS = ".!?:;\x00\n|–—•"
# What joins two names into a list rather than a statement about them (``_vouch``).
_COORDINATORS = frozenset({"", "and", "or", "&", "nor", "and the", "or the"})
_OPENERS = " \"'“‘([«"
_WORD_TRIM = "./-&*@#+"
_TITLE_WINDOW = 60
_TITLE_SHARE = 0.7
_TITLE_MIN_WORDS = 4


class Hit(NamedTuple):
    skill_id: str
    surface: str
    ambiguous: bool
    in_title: bool
    # Strong evidence for this hit alone: a version or a camel-case form.
    marked: bool
    entry: Entry
    start: int
    # The end of the name with its version, and of the name alone.
    stop: int
    name_stop: int


def _lowered(text: str, hit: Hit) -> bool:
    surface = text[hit.start : hit.name_stop]
    cased = hit.entry.cased
    return surface[:1].islower() or (cased is not None and cased != surface and cased != separate(surface))


def _part_number(text: str, hit: Hit) -> bool:
    glued = text[hit.name_stop : hit.name_stop + 2]
    return hit.name_stop - hit.start == 1 and glued[:1] == "." and glued[1:].isdigit()  # "M.2"


def _after(folded: str, hit: Hit) -> list[str]:
    return [word.strip(_WORD_TRIM) for word in folded[hit.stop : hit.stop + 50].split()[:3]]


def _strong_here(text: str, folded: str, hit: Hit) -> bool:
    """Evidence right beside an ambiguous hit: a programming word, or a title's head before a colon."""
    entry = hit.entry
    if _part_number(text, hit):
        return False
    after = _after(folded, hit)
    if _lowered(text, hit):
        # A lower-case homonym is a modifier of a programming word or nothing: "a ruby library", "the
        # rails plugin", not "from scratch on an app" or "a database and scripting language".
        return entry.category in _HEADED and bool(after) and after[0] in NEAR_WORDS
    if entry.category in GENERIC and not text[hit.start : hit.name_stop].isupper():
        # "Server code": a generic word beside code is still the word; an acronym is not ("ML framework").
        return False
    before = [word.strip(_WORD_TRIM) for word in folded[max(0, hit.start - 40) : hit.start].split()[-2:]]
    if any(word in NEAR_WORDS for word in before + after):
        return True
    # The colon right after the name: "Go 2024: the year in review" heads a review, not a language.
    colon = text[hit.name_stop : hit.name_stop + 3]
    return entry.category in _HEADED and colon[:1] == ":" and colon[1:] != "//"


def _weak_here(text: str, folded: str, hit: Hit, edges: Collection[int], languages: bool) -> bool:
    """Whether context in the item may count for this hit: a capitalised name in running text."""
    if _part_number(text, hit) or _lowered(text, hit):
        return False
    if hit.name_stop - hit.start == 1 and not languages:
        # A lone capital in running text is a variable ("E-values", "a set X") unless another language is
        # named beside it ("C and Rust").
        return False
    after = _after(folded, hit)
    if _initial(text, hit.start) and after and after[0] in _VERB_FOLLOWERS:
        return False  # "Go to Settings", "Go with the flow": the verb, whatever else the item names
    return not _named(text, hit.start, hit.stop, edges) and not _title_case(text, hit.start, hit.stop)


def _initial(text: str, start: int) -> bool:
    index = start - 1
    while index >= 0 and text[index] in _OPENERS:
        index -= 1
    return index < 0 or text[index] in _SENTENCE_ENDS


def _named(text: str, start: int, stop: int, skills: Collection[int]) -> bool:
    """Whether a capitalised word that is not a skill stands right beside the name ("Peter Kafka")."""
    if text[start - 1 : start] == " " and start - 1 not in skills:
        word_start = start - 1
        while word_start > 0 and (text[word_start - 1].isalnum() or text[word_start - 1] in "'’"):
            word_start -= 1
        word = text[word_start : start - 1]
        initial = _initial(text, word_start)
        lowered = word.lower()
        if word[:1].isupper() and not (initial and lowered in _FUNCTION_WORDS) and lowered not in NEAR_WORDS:
            return True
    if text[stop : stop + 1] == " " and stop + 1 not in skills:
        word_stop = stop + 1
        while word_stop < len(text) and text[word_stop].isalnum():
            word_stop += 1
        word = text[stop + 1 : word_stop]
        if word[:1].isupper() and word.lower() not in NEAR_WORDS:
            return True
    return False


def _title_case(text: str, start: int, stop: int) -> bool:
    """Whether the name stands in a Title Case headline, where capitals say nothing."""
    left = text[max(0, start - _TITLE_WINDOW) : start].rsplit("\x00", 1)[-1]
    right = text[stop : stop + _TITLE_WINDOW].split("\x00", 1)[0]
    words = [word for word in (left + " " + right).split() if len(word) > 3 and word[0].isalpha()]
    if len(words) < _TITLE_MIN_WORDS:
        return False
    return sum(word[0].isupper() for word in words) >= _TITLE_SHARE * len(words)


def judge(
    hits: list[Hit], signals: set[str], skills: dict[str, SkillInfo], text: str, folded: str
) -> list[TagMatch]:
    """Keep each skill with evidence (see the module docstring) and make its tag.

    The look around a hit costs the most, so it is taken only for a skill that still needs it.
    """
    groups: dict[str, list[Hit]] = {}
    strong: set[str] = set()
    for hit in hits:
        groups.setdefault(hit.skill_id, []).append(hit)
        if not hit.ambiguous or hit.marked or hit.skill_id in signals:
            strong.add(hit.skill_id)
    if len(strong) == len(groups):  # nothing ambiguous left to weigh: the usual case
        tags = [_tag(skill_id, group, skills[skill_id]) for skill_id, group in groups.items()]
        tags.sort(key=_rank)
        return tags
    # Evidence of the skill itself (its own unambiguous alias, a version, its cue) tells senses apart;
    # a programming word beside a shared name or context does not, so there the tie is broken.
    own = set(strong)
    losers = _tie_losers(hits, own, skills)
    for skill_id, group in groups.items():
        if skill_id not in strong and any(_strong_here(text, folded, hit) for hit in group):
            strong.add(skill_id)
    # A word of the other reading anywhere in the item outweighs a programming word beside the name
    # ("Gaussian process ... applications"), though not the skill's own evidence.
    strong -= losers | {skill_id for skill_id in strong - own if COUNTER + skill_id in signals}
    edges = {edge for hit in hits for edge in (hit.start, hit.name_stop)} if len(strong) < len(groups) else ()
    languages = any(skills[skill_id].category == "language" for skill_id in strong)
    candidates = [
        skill_id
        for skill_id in groups
        if skill_id not in strong
        and skill_id not in losers
        and skills[skill_id].category not in GENERIC
        and COUNTER + skill_id not in signals
    ]
    context = CONTEXT in signals or bool(strong)
    # Without context only two names can vouch for each other; the look around a hit is skipped otherwise.
    weak = (
        {
            skill_id
            for skill_id in candidates
            if any(_weak_here(text, folded, hit, edges, languages) for hit in groups[skill_id])
        }
        if context or len(candidates) > 1
        else set()
    )
    context = context or _vouch(text, [hit for hit in hits if hit.skill_id in weak])
    tags = [
        _tag(skill_id, group, skills[skill_id])
        for skill_id, group in groups.items()
        if skill_id in strong or (context and skill_id in weak)
    ]
    tags.sort(key=_rank)
    return tags


def _vouch(text: str, hits: list[Hit]) -> bool:
    """Whether two technology names in running text vouch for each other, as context for both ("Scala is
    still used for Spark jobs", "Cypress component tests run in Chrome"; issue 15). Names that follow
    each other in a list do not: that is how people are named ("Ray and Julia", "Ray, Julia and Chef")."""
    ordered = sorted(hits, key=lambda hit: hit.start)
    for first, second in pairwise(ordered):
        if second.skill_id == first.skill_id or second.start < first.stop:
            continue
        if text[first.stop : second.start].strip(" ,").lower() not in _COORDINATORS:
            return True
    return False


def _tie_losers(hits: list[Hit], strong: set[str], skills: dict[str, SkillInfo]) -> set[str]:
    """Skills that lose a tie of senses: where one written name stands for several skills (an alias two
    share) and no evidence of their own speaks for them, the skill of that name counts ("Bash" is Bash,
    not Shell), else the most popular (issue 15)."""
    starts = [hit.start for hit in hits]
    if len(set(starts)) == len(starts):
        return set()
    by_span: dict[tuple[int, int], list[Hit]] = {}
    for hit in hits:
        by_span.setdefault((hit.start, hit.name_stop), []).append(hit)
    losers: set[str] = set()
    for owners in by_span.values():
        weak = [hit for hit in owners if hit.skill_id not in strong]
        if len(owners) > 1 and weak:

            def rank(hit: Hit) -> tuple[bool, float, str]:
                info = skills[hit.skill_id]
                return hit.surface.casefold() == info.name.casefold(), info.popularity, hit.skill_id

            best = max(weak, key=rank).skill_id
            losers.update(hit.skill_id for hit in weak if hit.skill_id != best)
    return losers


def _rank(tag: TagMatch) -> tuple[float, str]:
    return -tag.score, tag.name


def _tag(skill_id: str, hits: list[Hit], info: SkillInfo) -> TagMatch:
    if len(hits) == 1:
        hit = hits[0]
        matched: tuple[str, ...] = (hit.surface,)
        weight, in_title = (TITLE_WEIGHT if hit.in_title else 1), hit.in_title
    else:
        weight = sum(TITLE_WEIGHT if hit.in_title else 1 for hit in hits)
        in_title = any(hit.in_title for hit in hits)
        matched = tuple(dict.fromkeys([hit.surface for hit in hits]))
    # Positional and unrounded (SCORE_SCALE is a power of two, so a whole weight over it is exact): this
    # runs for every tag.
    return TagMatch(
        skill_id,
        info.name,
        info.category,
        matched,
        len(hits),
        in_title,
        1.0 if weight >= SCORE_SCALE else weight / SCORE_SCALE,
    )
