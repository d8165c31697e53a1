"""Build digest's bundled skill taxonomy from openly licensed public sources.

The sources (GitHub Explore topics, Linguist, devicon, ESCO, O*NET and Stack Overflow) are described in
shared/data/README.md, section 1. Run::

    python -m tools.taxonomy.build --sources ../shared/data/taxonomy-sources --out digest/data

Two files come out: ``taxonomy.jsonl`` (CC BY 4.0 and MIT sources only) and
``taxonomy-stackoverflow.jsonl`` (extra aliases from Stack Overflow tag synonyms). Stack Overflow data is
CC BY-SA 4.0, whose ShareAlike term would spread to anything it is mixed into, so it never enters the
main file. The output depends only on the sources, so rebuilding gives byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from digest.ingest.taxonomy import Alias, Entity, skill_id_for
from tools.taxonomy import modern

FORMAT = "digest-taxonomy/1"
# The newest upstream snapshot (linguist @ b45dbe9b2825) dates the bundle instead of the clock, so a
# rebuild of unchanged sources is byte-identical. Bump it when the sources are refreshed.
SNAPSHOT_DATE = "2026.08.20"
BUNDLE_LICENCE = "CC-BY-4.0 AND MIT"
STACKOVERFLOW_LICENCE = "CC-BY-SA-4.0"
MAX_DESCRIPTION = 200
HOMONYMS = Path(__file__).parent.parent.parent / "digest" / "data" / "homonyms.txt"
# Stack Overflow synonyms of tags with fewer questions than this are too obscure to trust.
MIN_SO_QUESTIONS = 100
# O*NET products outside the tech classes are kept when at least this many occupations use them.
MIN_ONET_OCCUPATIONS = 3
# Lower-case words used in at least this many O*NET occupation descriptions count as everyday English.
MIN_WORD_OCCUPATIONS = 2

CATEGORIES = frozenset(
    {
        "language",
        "framework",
        "library",
        "tool",
        "platform",
        "database",
        "cloud",
        "concept",
        "practice",
        "format",
        "protocol",
        "os",
        "hardware",
        "company",
        "other",
    }
)


@dataclass(frozen=True)
class Source:
    """One upstream source as it is credited in the bundle header and NOTICE.md."""

    name: str
    licence: str
    attribution: str

    def to_json(self) -> dict[str, str]:
        """The header form of this source."""
        return {"name": self.name, "licence": self.licence, "attribution": self.attribution}


GITHUB = Source(
    "github-topics",
    "CC-BY-4.0",
    "Content based on github.com/github/explore used under the CC-BY-4.0 license.",
)
LINGUIST = Source(
    "linguist",
    "MIT",
    "Language data from github-linguist/linguist (lib/linguist/languages.yml), Copyright (c) GitHub, Inc. "
    "Used under the MIT License.",
)
DEVICON = Source(
    "devicon",
    "MIT",
    "Icon metadata from devicons/devicon (devicon.json), Copyright (c) konpa. Used under the MIT License.",
)
ESCO = Source(
    "esco",
    "CC-BY-4.0",
    "This service uses the ESCO classification of the European Commission (ESCO v1.2.0, © European Union), "
    "https://esco.ec.europa.eu. digest has modified the labels: qualifiers were removed, entries were "
    "filtered and merged with other sources.",
)
ONET = Source(
    "onet",
    "CC-BY-4.0",
    "This product includes information from the O*NET 29.2 Database by the U.S. Department of Labor, "
    "Employment and Training Administration (USDOL/ETA). Used under the CC BY 4.0 license. O*NET® is a "
    "trademark of USDOL/ETA. digest has modified all or some of this information. USDOL/ETA has not "
    "approved, endorsed, or tested these modifications.",
)
CURATED_SOURCE = Source(
    "curated",
    "CC-BY-4.0",
    "Hand-curated entries and corrections by the digest project (digest/taxonomy_build.py).",
)
STACKOVERFLOW = Source(
    "stackoverflow",
    STACKOVERFLOW_LICENCE,
    "Tag and tag-synonym data from Stack Overflow (Stack Exchange Data Explorer), "
    "licensed under CC BY-SA 4.0.",
)
SIMPLE_ICONS = Source(
    "simple-icons",
    "CC0-1.0",
    "Brand names and aliases from simple-icons/simple-icons (data/simple-icons.json), CC0 1.0. Brand names "
    "are trademarks of their owners.",
)
CNCF = Source(
    "cncf-glossary",
    "CC-BY-4.0",
    "Definitions adapted from the Cloud Native Glossary (CNCF), licensed under CC BY 4.0.",
)
PACKAGES = Source(
    "packages",
    "facts",
    "PyPI download ranks and npm download counts (facts about packages) confirm names and weigh popularity.",
)
BUNDLE_SOURCES = (GITHUB, LINGUIST, DEVICON, ESCO, ONET, CURATED_SOURCE, SIMPLE_ICONS, CNCF, PACKAGES)
_SOURCE_ORDER = {source.name: index for index, source in enumerate(BUNDLE_SOURCES)}


def homonyms(path: Path = HOMONYMS) -> frozenset[str]:
    """The shipped list of technology names that are also everyday words (digest/data/homonyms.txt)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(word for line in lines for word in line.split("#", 1)[0].split())


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Category hints differ in trust: a hand-set category beats Linguist's type, which beats devicon's tags,
# which beat keywords in a GitHub topic's description, and so on.
RANK_CURATED, RANK_LINGUIST, RANK_DEVICON, RANK_TOPIC, RANK_ESCO, RANK_ONET, RANK_WEAK = range(7)


# ---------------------------------------------------------------------------------------------------------
# Ours: hand-curated entries. They add must-have skills the sources lack (AI infrastructure, MLOps, vector
# databases, ...), fix display names (Tensorflow -> TensorFlow) and give the hierarchy the sources don't.
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Curated:
    """A hand-made entity, or corrections to the source entity with the same key."""

    key: str
    name: str = ""
    category: str = ""
    aliases: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    description: str = ""


CURATED: tuple[Curated, ...] = (
    Curated("ai", "Artificial intelligence", "concept", ("AI", "artificial intelligence")),
    Curated(
        "ai-infrastructure",
        "AI infrastructure",
        "concept",
        ("AI infra", "ML infrastructure", "machine learning infrastructure", "AI compute", "AI platform"),
        parents=("ai",),
        related=("mlops", "gpu", "kubernetes", "cloud-computing", "distributed-systems"),
        description="Compute, storage, networking and platform software for training and serving AI models.",
    ),
    Curated("machine-learning", "Machine learning", "concept", ("ML",), parents=("ai",)),
    Curated("deep-learning", "Deep learning", "concept", ("neural networks",), parents=("machine-learning",)),
    Curated(
        "generative-ai",
        "Generative AI",
        "concept",
        ("GenAI", "Gen AI", "generative artificial intelligence"),
        parents=("ai",),
        related=("llm",),
    ),
    Curated(
        "llm",
        "Large language model",
        "concept",
        ("Large language models", "LLM", "LLMs"),
        parents=("generative-ai", "nlp", "deep-learning"),
        related=("transformer", "rag"),
    ),
    Curated(
        "mlops",
        "MLOps",
        "practice",
        ("ML Ops", "machine learning operations", "LLMOps"),
        parents=("machine-learning", "devops"),
        related=("ai-infrastructure", "kubeflow", "mlflow"),
        description="Practices and tools for deploying, monitoring and maintaining machine learning models.",
    ),
    Curated(
        "distributed-systems",
        "Distributed systems",
        "concept",
        ("distributed system", "distributed computing"),
        related=("microservice", "cloud-computing"),
        description="Systems whose components run on networked computers and coordinate by passing messages.",
    ),
    Curated(
        "cloud-computing",
        "Cloud computing",
        "concept",
        ("cloud services",),
        related=("aws", "azure", "google-cloud", "serverless"),
        description="On-demand computing resources, storage and services delivered over the internet.",
    ),
    Curated("aws", "Amazon Web Services", "cloud", ("AWS",), parents=("cloud-computing",)),
    Curated("azure", "Microsoft Azure", "cloud", ("Azure",), parents=("cloud-computing",)),
    Curated(
        "google-cloud",
        "Google Cloud",
        "cloud",
        ("Google Cloud Platform", "GCP"),
        parents=("cloud-computing",),
    ),
    Curated("kubernetes", "Kubernetes", "platform", ("K8s",), related=("docker",)),
    Curated("docker", "Docker", "tool", ("Docker containers",)),
    Curated("postgresql", "PostgreSQL", "database", ("Postgres",), parents=("database",)),
    Curated("mysql", "MySQL", "database", parents=("database",)),
    Curated("mongodb", "MongoDB", "database", ("Mongo",), parents=("database",)),
    Curated("redis", "Redis", "database", parents=("database",)),
    Curated("sqlite", "SQLite", "database", ("SQLite3",), parents=("database",)),
    Curated("python", "Python", "language", ("Python 3", "python3", "Python 2")),
    Curated("go", "Go", "language", ("Golang", "Go language")),
    Curated("rust", "Rust", "language", ("Rust language", "rustlang")),
    Curated("java", "Java", "language"),
    Curated("javascript", "JavaScript", "language", ("JS",)),
    Curated("typescript", "TypeScript", "language", ("TS",)),
    Curated("c", "C", "language", ("C language", "ANSI C")),
    Curated("cpp", "C++", "language", ("C++", "cpp", "CPlusPlus")),
    Curated("csharp", "C#", "language", ("C#", "csharp", "C sharp")),
    Curated("ruby", "Ruby", "language"),
    Curated("php", "PHP", "language"),
    Curated("swift", "Swift", "language"),
    Curated("kotlin", "Kotlin", "language"),
    Curated("scala", "Scala", "language"),
    Curated("r", "R", "language", ("R language", "rstats", "R programming")),
    Curated("julia", "Julia", "language", ("Julia language", "JuliaLang")),
    Curated("react", "React", "library", ("React.js", "ReactJS"), parents=("javascript",)),
    Curated("vue", "Vue.js", "framework", ("Vue", "VueJS"), parents=("javascript",)),
    Curated("angular", "Angular", "framework", parents=("typescript",)),
    Curated("django", "Django", "framework", parents=("python",)),
    Curated("flask", "Flask", "framework", parents=("python",)),
    Curated("fastapi", "FastAPI", "framework", parents=("python",)),
    Curated("spring", "Spring", "framework", ("Spring Framework",), parents=("java",)),
    Curated("rails", "Ruby on Rails", "framework", ("Rails", "RoR"), parents=("ruby",)),
    Curated("nodejs", "Node.js", "platform", ("NodeJS", "Node"), parents=("javascript",)),
    Curated("dotnet", ".NET", "platform", (".NET Core", ".NET Framework", "dotnet")),
    Curated("tensorflow", "TensorFlow", "library", parents=("python", "deep-learning")),
    Curated("pytorch", "PyTorch", "library", parents=("python", "deep-learning")),
    Curated("scikit-learn", "scikit-learn", "library", ("sklearn",), parents=("python", "machine-learning")),
    Curated("pandas", "pandas", "library", parents=("python",)),
    Curated("numpy", "NumPy", "library", parents=("python",)),
    Curated("spark", "Apache Spark", "framework", ("Spark", "PySpark"), related=("data-engineering",)),
    Curated(
        "kafka",
        "Apache Kafka",
        "platform",
        ("Kafka",),
        related=("data-engineering", "distributed-systems"),
        description="Apache Kafka is an open source distributed event streaming platform.",
    ),
    Curated(
        "airflow",
        "Apache Airflow",
        "tool",
        ("Airflow",),
        related=("data-engineering",),
        description="Apache Airflow is an open source platform to author, schedule and monitor workflows.",
    ),
    Curated(
        "prometheus",
        "Prometheus",
        "tool",
        related=("grafana", "kubernetes"),
        description="Prometheus is an open source monitoring system and time series database.",
    ),
    Curated("terraform", "Terraform", "tool", ("HashiCorp Terraform",)),
    Curated("ansible", "Ansible", "tool"),
    Curated("grafana", "Grafana", "tool"),
    Curated("graphql", "GraphQL", "protocol"),
    Curated("rest-api", "REST", "protocol", ("REST API", "RESTful", "RESTful API", "REST APIs")),
    Curated("microservice", "Microservices", "practice", ("microservice architecture",)),
    Curated("devops", "DevOps", "practice"),
    Curated(
        "cicd", "CI/CD", "practice", ("CI CD", "continuous delivery"), related=("continuous-integration",)
    ),
    Curated(
        "data-engineering",
        "Data engineering",
        "practice",
        ("data pipelines",),
        related=("data-science", "spark", "airflow", "kafka"),
        description="Building the systems that collect, store, move and transform data for analysis.",
    ),
    Curated("data-science", "Data science", "concept", related=("machine-learning",)),
    Curated("nlp", "Natural language processing", "concept", ("NLP",), parents=("ai",)),
    Curated("computer-vision", "Computer vision", "concept", parents=("ai",)),
    Curated("reinforcement-learning", "Reinforcement learning", "concept", parents=("machine-learning",)),
    Curated(
        "transformer",
        "Transformers",
        "concept",
        ("transformer model", "transformer architecture"),
        parents=("deep-learning",),
    ),
    Curated(
        "rag",
        "Retrieval-augmented generation",
        "concept",
        ("RAG", "retrieval augmented generation", "retrieval-augmented generation"),
        parents=("llm",),
        related=("vector-database", "embeddings"),
    ),
    Curated(
        "vector-database",
        "Vector database",
        "database",
        ("vector databases", "vector DB", "vector store", "vector search"),
        parents=("database",),
        related=("embeddings", "rag"),
        description="A database that stores embeddings and finds the nearest vectors to a query.",
    ),
    Curated(
        "gpu",
        "GPU",
        "hardware",
        ("GPUs", "graphics processing unit", "GPU computing"),
        related=("cuda",),
        description="Graphics processing units, the parallel processors used for graphics and AI workloads.",
    ),
    Curated("cuda", "CUDA", "platform", parents=("gpu",)),
    # What people call it; without it "VS Code" reads as Visual Studio.
    Curated("visual-studio-code", aliases=("VS Code",)),
    # A name in use that the sources lack: "OS X 10.11" (else it reads as X).
    Curated("macos", aliases=("OS X", "Mac OS X")),
)

# Homonyms of everyday words, names or places that the derived word list misses; an alias matching one of
# these needs context before it counts as a mention.
AMBIGUOUS_WORDS = _words(
    """
    go r c d j e b v m java swift rust spring ruby julia react spark ray airflow prometheus kafka snowflake
    pandas git transformer transformers dart elm crystal chef puppet salt flask express rails node ember
    meteor mercury electron jest mocha jasmine karma gatsby next unity processing scratch logo pascal ada
    elixir groovy perl io ink mint nim red ring oracle delphi cassandra hive pig storm beam arrow
    presto druid elastic beats loki tempo jaeger cortex vector pulsar apache tomcat jetty caddy kong
    windows android chrome edge safari opera brave atom sublime vim nano eclipse rider alpine arch fedora
    hugo jekyll jenkins travis bamboo confluence slack zoom teams notion sketch canvas vault
    nomad consul packer helm envoy poetry black click requests sphinx celery polars
    phoenix falcon bottle pyramid tornado sanic gin echo fiber iris rocket actix axum tide warp yew
    solid lit alpine stimulus turbo remix astro parcel rollup gulp grunt
    babel make bazel buck pants ant maven cargo yarn bun hack lean coq agda
    idris clean cool fancy max racket scheme lisp prolog forth factor self simula
    basic modula oberon pony chapel zig odin jai carbon mojo gleam roc unison wasp
    rest gaussian agile
    """
)
HOMONYM_WORDS = homonyms()
# Lower-case words of SCOWL's American English list (wamerican; licence in data/english-words.COPYRIGHT).
DICTIONARY = frozenset(
    (Path(__file__).parent / "data" / "english-words.txt").read_text(encoding="utf-8").split()
)
# Entities only these sources give are brands and packages: a dictionary word among their names needs
# evidence ("Magic", "Loops"), whatever O*NET's word list says.
_BRAND_SOURCES = frozenset({"simple-icons", "packages"})
# Not homonyms after all, so they were taken out of the list above: "docker", "linux", "debian" and "gentoo"
# are not English words, and needing context for them lost plain mentions ("Pixelbook Linux is Debian").
# The same holds for tool and language names such as "haskell", "smalltalk", "npm", "gradle" or "keras".
# "java" went in: Java is also the island ("She went to Java, Indonesia"). So did "rest" ("the rest of the
# app"; REST is also the name of an LLM benchmark), "gaussian" (the adjective) and "agile" ("Agile Tortoise").

# Aliases that are written in capitals but match only case-sensitively, although they are no homonym of an
# everyday lower-case word: "Apple" the company against "an apple" the fruit, "Excel" against "to excel".
# "AI" is too short for the homonym rule, yet in capitals it always means artificial intelligence. "Quick
# Look" the macOS feature is two everyday words in lower case ("a quick look").
CASE_SENSITIVE_ALIASES = frozenset({"Apple", "AI", "Excel", "Quick Look"})

# Everyday English words that the O*NET-derived word list (``common_words``) misses, found as false tags
# in feed text (tests/data/gold). As aliases they are homonyms: a single-word name among them needs context
# and its capitals, and a lower-case alias among them that is not the entity's own name is dropped.
EVERYDAY_WORDS = _words(
    """
    just first mean means call calls com etc tim san zeit micro act matter reach pass none console reset
    example font email script source framework template generator presentation gap demo foundation promise
    animation tutorial publishing privacy reporting automation desktop protocol parser simulation simulator
    configuration dataset kernel algorithm max next arc metal cue rage progress logos adventure strategy
    extensions extension plugin quantum paper software growth resources resource motion tas hackfest
    application applications rss slice switch glyph reason reasons dependency dependencies apples maximum
    here bit box task threads loop loops eight polar
    """
)

# Generic concepts (mostly GitHub topics) that are words of every text rather than skills anybody follows:
# "an app", "the data", "a test", "our project". Tagging them only adds noise, so they are left out of the
# bundle. Named fields stay ("Unit testing", "Machine learning", "Compiler").
GENERIC_ENTITIES = frozenset(
    {
        "algorithm", "api", "app", "automation", "client", "code", "code-quality", "configuration", "data",
        "dataset", "debugging", "demo", "desktop", "development", "documentation", "education", "example",
        "extension", "framework", "generator", "hackathon-kit", "image", "instrumentation", "learning",
        "library", "mobile", "monitoring", "parser", "parsing", "presentation", "programming",
        "programming-language", "project", "promise", "protocol", "query", "script", "security", "server",
        "support", "template", "testing", "todo", "tool", "tutorial", "video", "web", "font", "email",
        "calendar", "privacy", "network", "backend", "deployment", "operating-system", "sports", "art",
        "animation", "publishing", "marketing", "router", "spreadsheet", "localization", "authentication",
        "kernel", "terminal", "webapp", "sdk", "ui", "software",
    }
)  # fmt: skip

# Usual names missing from the sources for entities only O*NET gives (added once O*NET has been read).
EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "microsoft-excel": ("Excel",),
    "amazon-simple-storage-service": ("Amazon S3",),
}

# Aliases that name something else in ordinary prose: "rss" is not XML, "quantum" is physics before it is
# quantum computing, "Extensions" is not Discord bots.
WRONG_ALIASES = frozenset(
    {
        ("xml", "rss"),
        ("quantum-computing", "quantum"),
        ("discord-bots", "extensions"),
        ("informatica-big-data", "big data"),
        ("software-engineering", "software development"),
        ("nlp", "natural language"),
        ("collectible-card-game", "tcg"),
        ("pug", "jade"),
        # "Alpine" is Alpine Linux (and the mountains) before it is the JavaScript framework Alpine.js.
        ("alpinejs", "alpine"),
        # "DBMS" is as generic as "database", whose capitalised name already needs context.
        ("database", "dbms"),
        # Plain "Visual Basic" is the older language; Visual Basic .NET is named with its ".NET".
        ("visual-basic-net", "visual basic"),
        # O*NET's "Real estate application contract transmission REACT" is no name of React (issue 15).
        ("react", "real estate application contract transmission"),
        ("react", "real estate application contract transmission react"),
        # Linguist lists "rusthon", a Python-to-Rust transpiler, as a Python alias (issue 15).
        ("python", "rusthon"),
    }
)

# Words too empty to be aliases on their own.
STOPWORDS = _words(
    """
    a an and are as at be but by for from has have he her his i if in into is it its no not of on or our
    she so than that the their them then there these they this to too us was we were what when where which
    who why will with you your all any can do does had how more most new one other out some such up use
    """
)

# Noise that the sources carry: aliases pointing at the wrong thing (devicon gives Jekyll Jest's alias;
# Linguist calls JavaScript "node", HCL "terraform" and C# "cake", after the Cake build tool).
ALIAS_ERRATA = frozenset(
    {
        ("jekyll", "jestjs"),
        ("twitter", "x"),
        ("JavaScript", "node"),
        ("HCL", "terraform"),
        ("HCL", "opentofu"),
        ("C#", "cake"),
        ("C#", "cakescript"),
    }
)
# Source entries that would merge into the wrong entity: devicon's "vite" is a blockchain, not the build
# tool; ESCO's "SPARK" is the Ada dialect, not Apache Spark. ESCO's "ML (computer programming)" is the ML
# language but carries "ML systems" and "ML development principles", and in tech prose "ML" is machine
# learning: as an entity it only competes with Machine learning for every "ML".
SKIPPED_ENTRIES = frozenset({("devicon", "vite"), ("esco", "SPARK"), ("esco", "ML (computer programming)")})
# ESCO labels that share their name with a different, better-known technology (the HTML canvas).
ESCO_DISTINCT = frozenset({"Canvas (learning management systems)"})

# Last words that make a GitHub topic alias a listing rather than a name ("deep-learning-tutorial").
_TOPIC_ALIAS_NOISE = _words(
    """
    tutorial tutorials example examples resources papers library libraries awesome project projects
    algorithms application applications app apps demo demos sample samples boilerplate starter template
    templates guide course courses book books cheatsheet interview list experiments models
    """
)
_TOPIC_HINTS: tuple[tuple[str, str], ...] = (
    ("programming language", "language"),
    ("scripting language", "language"),
    ("query language", "language"),
    ("markup language", "language"),
    ("operating system", "os"),
    ("linux distribution", "os"),
    ("database", "database"),
    ("file format", "format"),
    ("data format", "format"),
    ("protocol", "protocol"),
    ("cloud", "cloud"),
    ("framework", "framework"),
    ("library", "library"),
    ("company", "company"),
    ("corporation", "company"),
    ("microcontroller", "hardware"),
    ("hardware", "hardware"),
    ("platform", "platform"),
)
_DEVICON_HINTS: tuple[tuple[str, str], ...] = (
    ("database", "database"),
    ("os", "os"),
    ("operating-system", "os"),
    ("framework", "framework"),
    ("library", "library"),
    ("language", "language"),
    ("cloud", "cloud"),
    ("platform", "platform"),
    ("hardware", "hardware"),
)
# Devicon tags that describe a kind of thing rather than a related technology.
_DEVICON_GENERIC_TAGS = _words(
    """
    open-source programming language framework library tool web software development platform api data
    editor ide server cloud hosting testing package manager build design app application mobile database
    """
)
_ESCO_QUALIFIERS: dict[str, str] = {
    "computer programming": "language",
    "tools for software configuration management": "tool",
    "digital game creation systems": "tool",
    "penetration testing tool": "tool",
    "learning management systems": "platform",
    "graphics editor software": "tool",
    "integrated development environment software": "tool",
    "mobile operating systems": "os",
    "database management systems": "database",
}
_ESCO_BROADER: tuple[tuple[str, str], ...] = (
    ("computer programming", "language"),
    ("query languages", "language"),
    ("style sheet languages", "language"),
    ("database management systems", "database"),
    ("mobile operating systems", "os"),
    ("cloud technologies", "cloud"),
    ("software frameworks", "framework"),
    ("project management methodologies", "practice"),
)
# Lower-case ESCO concepts are kept only under these (tech) broader groups.
_ESCO_TECH_GROUPS = (
    "software and applications development and analysis",
    "computer programming",
    "database and network design and administration",
)
_ESCO_GENERIC_WORDS = frozenset(
    {"ICT", "policy", "policies", "standards", "market", "methodologies", "software"}
)

_ONET_CATEGORIES: dict[str, str] = {
    "Data base management system software": "database",
    "Object oriented data base management software": "database",
    "Operating system software": "os",
    "Cloud-based data access and sharing software": "cloud",
    "Cloud-based management software": "cloud",
    "Cloud-based protection or security software": "cloud",
    "Web platform development software": "framework",
    "Object or component oriented development software": "tool",
    "Development environment software": "tool",
    "Application server software": "platform",
    "Network monitoring software": "tool",
    "Configuration management software": "tool",
    "Program testing software": "tool",
    "Business intelligence and data analysis software": "tool",
    "Data mining software": "tool",
    "Enterprise application integration software": "tool",
    "Metadata management software": "tool",
    "File versioning software": "tool",
    "Clustering software": "tool",
    "Compiler and decompiler software": "tool",
    "Graphical user interface development software": "framework",
    "Storage networking software": "tool",
    "Filesystem software": "tool",
    "Internet directory services software": "tool",
    "Enterprise system management software": "tool",
    "Transaction server software": "platform",
    "Switch or router software": "tool",
    "Backup or archival software": "tool",
    "Network security or virtual private network VPN management software": "tool",
    "Authentication server software": "tool",
    "Web page creation and editing software": "tool",
    "Requirements analysis and system architecture software": "tool",
}
# Vendor names O*NET puts before product names ("Oracle Java", "Apache Kafka").
_VENDORS = (
    "Amazon Web Services",
    "Microsoft",
    "Oracle",
    "Google",
    "IBM",
    "Apache",
    "Adobe",
    "Amazon",
    "Atlassian",
    "Autodesk",
    "The MathWorks",
    "MathWorks",
    "Red Hat",
    "SAP",
    "Cisco",
    "Apple",
    "Eclipse",
    "Facebook",
    "Intuit",
    "Hewlett Packard",
    "HP",
    "Dassault Systemes",
    "Bentley",
    "Trimble",
    "ESRI",
    "Salesforce",
    "Tibco",
    "Informatica",
    "Teradata",
    "VMware",
    "Elastic",
    "HashiCorp",
    "JetBrains",
    "Splunk",
    "SAS",
)
_TRAILING_SOFTWARE = re.compile(r"\s+software$", re.IGNORECASE)
_TRAILING_ACRONYM = re.compile(r"^(?P<full>\S+(?:\s+\S+)+)\s+(?P<acronym>[A-Z][A-Z0-9&/+.-]{1,7})$")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_PARENTHETICAL = re.compile(r"^(?P<base>.+?)\s*\((?P<paren>[^()]+)\)$")
_SO_VERSION = re.compile(r"-\d+(\.[0-9x]+)*$")


@dataclass(frozen=True)
class ExtraAlias:
    """One Stack Overflow-derived alias, kept apart because it is CC BY-SA 4.0."""

    entity: str
    alias: str

    def to_json(self) -> dict[str, str]:
        """The line form of this alias."""
        return {"entity": self.entity, "alias": self.alias, "source": STACKOVERFLOW.name}


@dataclass(frozen=True)
class BuildResult:
    """Everything a build produces: the main bundle, the separate Stack Overflow aliases and both headers."""

    entities: tuple[Entity, ...]
    stackoverflow: tuple[ExtraAlias, ...]
    meta: dict[str, Any]
    stackoverflow_meta: dict[str, Any]


@dataclass
class Draft:
    """An entity while sources are merged into it; references are resolved only at the end."""

    key: str
    name: str
    category: str
    rank: int
    description: str = ""
    aliases: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)
    related: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    trusted: set[str] = field(default_factory=set)
    popularity: float = 0.0


class Registry:
    """The drafts plus an index from loosely normalised names and trusted aliases to draft keys."""

    def __init__(self) -> None:
        self.drafts: dict[str, Draft] = {}
        self._index: dict[str, str] = {}

    def find(self, surfaces: Iterable[str]) -> Draft | None:
        """The draft that any of ``surfaces`` already names, trying them in order."""
        for surface in surfaces:
            key = self.resolve(surface)
            if key is not None:
                return self.drafts[key]
        return None

    def resolve(self, surface: str) -> str | None:
        """The key of the draft that ``surface`` names, if any."""
        return self._index.get(loose(surface))

    def create(self, name: str, category: str, rank: int, source: str, key: str = "") -> Draft:
        """Add a draft; a key already taken by a different entity gets the source name appended."""
        key = key or slugify(name)
        if key in self.drafts:
            key = f"{key}-{source}"
        draft = Draft(key, name, category, rank, sources={source})
        self.drafts[key] = draft
        self._remember(key, key)
        self._remember(name, key)
        return draft

    def add_aliases(self, draft: Draft, aliases: Iterable[str], trusted: bool) -> None:
        """Attach aliases; only trusted ones may later pull other sources' entries into this draft."""
        for alias in aliases:
            draft.aliases.append(alias)
            if trusted:
                draft.trusted.add(loose(alias))
                self._remember(alias, draft.key)

    def drop(self, key: str) -> None:
        """Forget a draft and every surface form that names it, so references to it resolve to nothing."""
        self.drafts.pop(key, None)
        self._index = {surface: owner for surface, owner in self._index.items() if owner != key}

    def _remember(self, surface: str, key: str) -> None:
        # The first source to claim a surface form keeps it, so GitHub topics win over later sources.
        if loose(surface):
            self._index.setdefault(loose(surface), key)


def loose(text: str) -> str:
    """A matching key: case-folded, with spaces, hyphens, underscores and inner dots removed ("Node.js")."""
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    return folded[:1] + re.sub(r"[\s\-_.]+", "", folded[1:])


def slugify(text: str) -> str:
    """A stable lower-case URL slug ("C#" -> "c-sharp", "Apache Kafka" -> "apache-kafka")."""
    text = text.replace("++", " plus plus ").replace("+", " plus ").replace("#", " sharp ")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "x"


# --- GitHub Explore topics ------------------------------------------------------------------------------
def _read_topics(root: Path) -> Iterator[dict[str, Any]]:
    for path in sorted((root / "github-explore-topics" / "topics").glob("*/index.md")):
        match = _FRONT_MATTER.match(path.read_text(encoding="utf-8"))
        if match:
            yield yaml.safe_load(match.group(1))


def _split_list(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _topic_alias(slug: str) -> str | None:
    words = slug.split("-")
    if len(words) > 1 and words[-1] in _TOPIC_ALIAS_NOISE:
        return None
    # "python-3-6" is how a slug spells "python 3.6".
    return re.sub(r"(?<=\d) (?=\d)", ".", " ".join(words))


def _topic_category(meta: dict[str, Any]) -> str:
    text = str(meta.get("short_description") or "").lower()
    for needle, category in _TOPIC_HINTS:
        if needle in text:
            return category
    # A topic with a home page is a product; one without is an idea ("machine learning").
    return "tool" if meta.get("url") or meta.get("github_url") else "concept"


def _split_parenthetical(label: str) -> tuple[str, str]:
    match = _PARENTHETICAL.match(label.strip())
    return (match["base"], match["paren"]) if match else (label.strip(), "")


def _add_topics(registry: Registry, root: Path) -> None:
    for meta in _read_topics(root):
        name, paren = _split_parenthetical(str(meta["display_name"]))
        draft = registry.create(name, _topic_category(meta), RANK_TOPIC, GITHUB.name, key=str(meta["topic"]))
        draft.description = short_description(str(meta.get("short_description") or ""))
        extra = [paren] if paren and paren.lower() != "disambiguation" else []
        aliases = [alias for alias in map(_topic_alias, _split_list(meta.get("aliases"))) if alias]
        registry.add_aliases(draft, [*extra, *aliases], trusted=True)
        draft.related.update(_split_list(meta.get("related")))


def short_description(text: str) -> str:
    """Collapse whitespace and cut at a word boundary so the text fits in MAX_DESCRIPTION characters."""
    text = " ".join(text.split())
    if len(text) <= MAX_DESCRIPTION:
        return text
    return text[: MAX_DESCRIPTION - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


# --- ours -----------------------------------------------------------------------------------------------
def _add_curated(registry: Registry) -> None:
    for item in CURATED:
        draft = registry.drafts.get(item.key)
        if draft is None:
            draft = registry.create(item.name, item.category, RANK_CURATED, CURATED_SOURCE.name, key=item.key)
        elif item.name and item.name != draft.name:
            # Our display name wins; the source's spelling stays findable as an alias.
            registry.add_aliases(draft, [draft.name], trusted=True)
            draft.name = item.name
        draft.sources.add(CURATED_SOURCE.name)
        draft.category, draft.rank = item.category or draft.category, RANK_CURATED
        draft.description = draft.description or item.description
        registry.add_aliases(draft, [item.name, *item.aliases], trusted=True)
        draft.parents.update(item.parents)
        draft.related.update(item.related)


# --- Linguist -------------------------------------------------------------------------------------------
def _add_linguist(registry: Registry, root: Path) -> None:
    languages = yaml.safe_load((root / "github-linguist" / "languages.yml").read_text(encoding="utf-8"))
    for name in sorted(languages):
        info = languages[name]
        programming = info.get("type") == "programming"
        draft = registry.find([name])
        if draft is None:
            # Variants such as "Julia REPL" and data or markup formats only enrich entities we already have.
            if not programming or info.get("group"):
                continue
            draft = registry.create(name, "language", RANK_LINGUIST, LINGUIST.name)
        _merge_name(draft, name)
        draft.sources.add(LINGUIST.name)
        _set_category(
            draft, "language" if programming else "format", RANK_LINGUIST if programming else RANK_WEAK
        )
        aliases = [
            str(alias) for alias in info.get("aliases") or [] if (name, str(alias)) not in ALIAS_ERRATA
        ]
        registry.add_aliases(draft, [name, *aliases], trusted=True)
        if info.get("group"):
            draft.parents.add(str(info["group"]))


def _merge_name(draft: Draft, name: str) -> None:
    # Devicon gives only lower-case slugs ("duckdb"); a later source's "DuckDB" is the better display name.
    if draft.name.islower() and not name.islower() and loose(name) == loose(draft.name):
        draft.name = name


def _set_category(draft: Draft, category: str, rank: int) -> None:
    if rank < draft.rank:
        draft.category, draft.rank = category, rank


# --- devicon --------------------------------------------------------------------------------------------
def _add_devicon(registry: Registry, root: Path) -> None:
    items = json.loads((root / "devicon" / "devicon.json").read_text(encoding="utf-8"))
    for item in sorted(items, key=lambda entry: str(entry["name"])):
        slug = str(item["name"])
        if (DEVICON.name, slug) in SKIPPED_ENTRIES:
            continue
        alts = [str(alt) for alt in item.get("altnames") or [] if (slug, str(alt)) not in ALIAS_ERRATA]
        tags = [str(tag) for tag in item.get("tags") or []]
        draft = registry.find([slug, *alts])
        display = _devicon_display(slug, alts)
        if draft is None:
            draft = registry.create(display, _devicon_category(tags), RANK_DEVICON, DEVICON.name)
        _merge_name(draft, display)
        draft.sources.add(DEVICON.name)
        _set_category(draft, _devicon_category(tags), RANK_DEVICON)
        registry.add_aliases(draft, [alias for alias in [slug, *alts] if _useful_devicon_alias(alias)], True)
        draft.related.update(tag for tag in tags if tag.lower() not in _DEVICON_GENERIC_TAGS)


def _devicon_display(slug: str, alts: Sequence[str]) -> str:
    # An altname that only adds spacing or capitals to the slug ("Cloud Run") is the product's real name.
    spelled = [alt for alt in alts if loose(alt) == loose(slug) and not alt.islower()]
    return spelled[0] if spelled else slug


def _devicon_category(tags: Sequence[str]) -> str:
    lowered = {tag.lower() for tag in tags}
    return next((category for tag, category in _DEVICON_HINTS if tag in lowered), "tool")


def _useful_devicon_alias(alias: str) -> bool:
    # Long run-together slugs ("remotedictionaryserver") are icon search keys, never written in prose.
    return not (alias.isalnum() and alias.islower() and len(alias) > 12)


# --- ESCO -----------------------------------------------------------------------------------------------
def _add_esco(registry: Registry, root: Path) -> None:
    path = root / "esco-v1.2.0" / "digitalSkillsCollection_en.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: row["conceptUri"])
    by_uri: dict[str, Draft] = {}
    for row in rows:
        draft = _add_esco_concept(registry, row)
        if draft is not None:
            by_uri[row["conceptUri"]] = draft
    for row in rows:
        if row["conceptUri"] in by_uri:
            broader = (by_uri.get(uri.strip()) for uri in row["broaderConceptUri"].split("|"))
            by_uri[row["conceptUri"]].parents.update(parent.key for parent in broader if parent)


def _add_esco_concept(registry: Registry, row: dict[str, str]) -> Draft | None:
    label = " ".join(row["preferredLabel"].split())
    if row["skillType"] != "knowledge" or (ESCO.name, label) in SKIPPED_ENTRIES:
        return None
    name, qualifier = _split_parenthetical(label)
    category = _ESCO_QUALIFIERS.get(qualifier) or _esco_category(row, name)
    draft = None if label in ESCO_DISTINCT else registry.find([name])
    if draft is not None and qualifier and category == "language" and draft.category != "language":
        draft = None  # "ML (computer programming)" is not machine learning
    if draft is None:
        if not _esco_worth_adding(row, name, qualifier):
            return None
        draft = registry.create(name, category, RANK_ESCO, ESCO.name, key=slugify(label))
    _merge_name(draft, name)
    draft.sources.add(ESCO.name)
    _set_category(draft, category, RANK_ESCO)
    draft.description = draft.description or short_description(row["description"])
    # Most alt labels are one a line, but some lines hold several joined by " | ".
    alt_labels = [
        " ".join(alt.split()) for line in row["altLabels"].splitlines() for alt in line.split(" | ")
    ]
    fitting = [alt for alt in alt_labels if 0 < len(alt.split()) <= 5 and _esco_alt_fits(name, alt)]
    registry.add_aliases(draft, [name, *fitting], False)
    return draft


def _esco_alt_fits(name: str, alt: str) -> bool:
    # A group concept ("computer programming") lists its members ("DIBOL", "Seed7") as alt labels; only
    # rephrasings and its own acronym ("machine learning" -> "ML") are aliases of it.
    if name != name.lower():
        return True
    return alt == alt.lower() or (alt.isupper() and _initials_fit(name, alt))


def _esco_category(row: dict[str, str], name: str) -> str:
    broader = row["broaderConceptPT"]
    hint = next((category for needle, category in _ESCO_BROADER if needle in broader), None)
    return hint or ("tool" if name != name.lower() else "concept")


def _esco_worth_adding(row: dict[str, str], name: str, qualifier: str) -> bool:
    words = name.split()
    if qualifier or _ESCO_GENERIC_WORDS.intersection(words) or len(words) > 6:
        return bool(qualifier) and not _ESCO_GENERIC_WORDS.intersection(words)
    if name != name.lower():
        return True  # a proper noun or acronym: a product, language or method
    return len(words) <= 3 and any(group in row["broaderConceptPT"] for group in _ESCO_TECH_GROUPS)


# --- O*NET ----------------------------------------------------------------------------------------------
@dataclass
class _OnetTechnology:
    name: str
    hot: bool = False
    classes: set[str] = field(default_factory=set)
    occupations: set[str] = field(default_factory=set)


def _read_onet(root: Path) -> list[_OnetTechnology]:
    technologies: dict[str, _OnetTechnology] = {}
    path = root / "onet-29.2" / "Technology Skills.txt"
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            tech = technologies.setdefault(row["Example"], _OnetTechnology(row["Example"]))
            tech.hot = tech.hot or "Y" in (row["Hot Technology"], row["In Demand"])
            tech.classes.add(row["Commodity Title"])
            tech.occupations.add(row["O*NET-SOC Code"])
    return [technologies[name] for name in sorted(technologies)]


def _onet_forms(name: str) -> tuple[str, str, str]:
    """Split "Structured query language SQL software" into its name, expansion and acronym."""
    name = _TRAILING_SOFTWARE.sub("", name).strip()
    match = _TRAILING_ACRONYM.match(name)
    if match and _initials_fit(match["full"], match["acronym"]):
        return name, match["full"], match["acronym"]
    return name, name, ""


def _initials_fit(full: str, acronym: str) -> bool:
    # "Amazon Elastic Compute Cloud EC2" and "Apache Subversion SVN" fit loosely enough; "Google Go" not.
    initials = _initials(full)
    letters = [char for char in acronym.lower() if char.isalpha()]
    position = 0
    for letter in letters:
        position = initials.find(letter, position) + 1
        if position == 0:
            return False
    return bool(letters)


def _initials(text: str) -> str:
    parts = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", text)
    return "".join(part[0].lower() for part in parts)


def _strip_vendor(name: str) -> str:
    for vendor in _VENDORS:
        if name.startswith(vendor + " ") and len(name) > len(vendor) + 2:
            return name[len(vendor) + 1 :]
    return name


def _add_onet(registry: Registry, root: Path, words: frozenset[str]) -> None:
    for tech in _read_onet(root):
        name, full, acronym = _onet_forms(tech.name)
        stripped = [_strip_vendor(name), _strip_vendor(full)]
        draft = registry.find([name, full, *stripped, acronym] if acronym else [name, full, *stripped])
        if draft is None:
            if full.lower() in words or not _onet_worth_adding(tech, full, acronym):
                continue
            category = next(
                (_ONET_CATEGORIES[c] for c in sorted(tech.classes) if c in _ONET_CATEGORIES), "tool"
            )
            draft = registry.create(full, category, RANK_ONET, ONET.name)
        _merge_name(draft, full)
        draft.sources.add(ONET.name)
        # "Oracle Java" -> "Java" helps matching, but "Google Cloud" -> "Cloud" is no name to publish.
        products = [form for form in stripped if len(form.split()) > 1 or not form.istitle()]
        registry.add_aliases(
            draft, [form for form in dict.fromkeys([name, full, *products, acronym]) if form], False
        )


def _onet_worth_adding(tech: _OnetTechnology, full: str, acronym: str) -> bool:
    if tech.hot:
        return True
    # "Cost accounting software" is a kind of software, not a product: nothing after the first word is
    # capitalised. With an acronym ("Secure shell SSH") it is a named standard, worth it in tech classes.
    words = full.split()
    generic = len(words) > 1 and all(word == word.lower() for word in words[1:])
    tech_class = bool(tech.classes.intersection(_ONET_CATEGORIES))
    if generic:
        return bool(acronym) and tech_class
    # Products used in several occupations ("Microsoft Excel") are skills people list, whatever the class.
    return tech_class or len(tech.occupations) >= MIN_ONET_OCCUPATIONS


# --- finishing: aliases, ambiguity, references ----------------------------------------------------------
def common_words(root: Path) -> frozenset[str]:
    """Everyday English words: lower-case words used in several O*NET occupation descriptions.

    Job descriptions are plain English about every trade, so words they share ("spring", "make", "ray")
    are ones an alias can't claim without context.
    """
    counts: Counter[str] = Counter()
    path = root / "onet-29.2" / "Occupation Data.txt"
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            counts.update(set(re.findall(r"\b[a-z]{2,}\b", row["Description"])))
    found = {word for word, count in counts.items() if count >= MIN_WORD_OCCUPATIONS}
    return frozenset(found | EVERYDAY_WORDS)


def _cased(alias: str, draft: Draft) -> str:
    """Restore acronym capitals that slugs lost ("gcp" -> "GCP", "ml" -> "ML")."""
    if not (alias.islower() and alias.isalnum() and len(alias) <= 5):
        return alias
    words = set(re.findall(r"[A-Za-z0-9]+", f"{draft.name} {draft.description}"))
    return alias.upper() if alias == _initials(draft.name) or alias.upper() in words else alias


def _keeps(alias: str, category: str) -> bool:
    folded = alias.lower()
    if folded in STOPWORDS or not re.search(r"[^\W\d_]", alias) or len(alias) > 80:
        return False
    if len(alias) == 1:
        return alias.isupper() and category == "language"  # R, C, D
    # Two lower-case letters ("py", "ml") match too much prose to be worth it.
    return len(alias) > 2 or alias != folded or not alias.isalpha()


def _surface_forms(draft: Draft, owners: dict[str, set[str]], words: frozenset[str]) -> list[str]:
    """The name, then each distinct alias worth keeping, in the casing that shows the most capitals."""
    chosen = {draft.name.lower(): draft.name}
    for raw in draft.aliases:
        alias = _cased(" ".join(raw.split()), draft)
        if not _keeps(alias, draft.category) or _claimed(alias, draft, owners) or _wrong(alias, draft, words):
            continue
        best = chosen.setdefault(alias.lower(), alias)
        if best != draft.name and sum(map(str.isupper, alias)) > sum(map(str.isupper, best)):
            chosen[alias.lower()] = alias
    return list(chosen.values())


def _wrong(alias: str, draft: Draft, words: frozenset[str]) -> bool:
    # A lower-case everyday word is no name for a thing called something else: GitHub topics give TWRP the
    # alias "software", Bukkit "paper" and Makefile "make", and prose uses those words all the time.
    if (draft.key, alias.lower()) in WRONG_ALIASES:
        return True
    return alias.islower() and alias in words and loose(alias) != loose(draft.name)


def _claimed(alias: str, draft: Draft, owners: dict[str, set[str]]) -> bool:
    # An untrusted alias that another entity names or trusts belongs to that entity: ESCO's "Mocha" for
    # JavaScript is the test runner, its "AngularJS" for computer programming is Angular. Trusted aliases
    # that clash are kept and marked ambiguous instead.
    claimants = owners.get(loose(alias), set())
    return bool(claimants) and draft.key not in claimants and loose(alias) not in draft.trusted


def _word_ambiguous(alias: str, words: frozenset[str]) -> bool:
    # Punctuation the matcher folds away does not make a word a name: "Act!" is read as "act".
    folded = alias.lower().rstrip("!?.")
    return (
        len(alias) <= 2
        or folded in AMBIGUOUS_WORDS
        or folded in HOMONYM_WORDS
        or (" " not in folded and folded in words)
    )


def _aliases(forms: Sequence[str], shared: set[str], words: frozenset[str]) -> tuple[Alias, ...]:
    result = []
    for form in forms:
        homonym = _word_ambiguous(form, words)
        # An acronym spelling a word ("FIRST", "MEAN", "CALL") is only the acronym in capitals; so is a
        # name we list as case-sensitive ("Apple", not "an apple"). Neither needs more context than that.
        acronym = form.isalpha() and form.isupper() and len(form) > 1 and form.lower() in words
        if acronym or form in CASE_SENSITIVE_ALIASES:
            result.append(Alias(form, form.lower() in shared, True))
            continue
        # Case only rescues a homonym when it is written with capitals: "Go" the language, "go" the verb.
        result.append(Alias(form, homonym or form.lower() in shared, homonym and form != form.lower()))
    return tuple(result)


def _references(
    registry: Registry, draft: Draft, refs: Iterable[str], exclude: Iterable[str]
) -> tuple[str, ...]:
    keys = {registry.resolve(ref) for ref in refs} - {None, draft.key, *exclude}
    return tuple(sorted(skill_id_for(key) for key in keys if key is not None))


def _finish(registry: Registry, words: frozenset[str]) -> tuple[Entity, ...]:
    owners: dict[str, set[str]] = {}
    for draft in registry.drafts.values():
        for surface in {loose(draft.name), *draft.trusted}:
            owners.setdefault(surface, set()).add(draft.key)
    forms = {key: _surface_forms(draft, owners, words) for key, draft in registry.drafts.items()}
    counts = Counter(form.lower() for surface in forms.values() for form in surface)
    shared = {form for form, count in counts.items() if count > 1}
    entities = []
    for key in sorted(registry.drafts):
        draft = registry.drafts[key]
        brand = draft.sources <= _BRAND_SOURCES
        parents = _references(registry, draft, draft.parents, ())
        parent_keys = {registry.resolve(ref) or "" for ref in draft.parents}
        entities.append(
            Entity(
                id=skill_id_for(key),
                key=key,
                name=draft.name,
                slug=slugify(key),
                category=draft.category if draft.category in CATEGORIES else "other",
                description=draft.description,
                aliases=_aliases(forms[key], shared, words | DICTIONARY if brand else words),
                parents=parents,
                related=_references(registry, draft, draft.related, parent_keys),
                sources=tuple(sorted(draft.sources, key=_SOURCE_ORDER.__getitem__)),
                popularity=draft.popularity,
            )
        )
    return tuple(entities)


# --- Stack Overflow (CC BY-SA 4.0: kept out of the main bundle) -----------------------------------------
def _stackoverflow(
    root: Path, registry: Registry, entities: Sequence[Entity], words: frozenset[str]
) -> tuple[ExtraAlias, ...]:
    folder = root / "stackoverflow-sede"
    questions = _so_question_counts(folder / "Tags.csv")
    known = {entity.key: {loose(alias.text) for alias in entity.aliases} for entity in entities}
    found: set[ExtraAlias] = set()
    for source_tag, target_tag in _so_synonyms(folder / "TagSynonyms.csv"):
        key = registry.resolve(target_tag) or registry.resolve(_SO_VERSION.sub("", target_tag))
        if key is None or questions.get(target_tag, MIN_SO_QUESTIONS) < MIN_SO_QUESTIONS:
            continue
        for tag in (source_tag, target_tag):
            if _so_alias_fits(tag, key, registry, known[key], words):
                found.add(ExtraAlias(skill_id_for(key), tag))
    return tuple(sorted(found, key=lambda extra: (extra.entity, extra.alias)))


def _so_alias_fits(tag: str, key: str, registry: Registry, known: set[str], words: frozenset[str]) -> bool:
    # The extra file has no ambiguity flags, so homonyms ("spring-boot" is fine, "rest" is not) stay out,
    # as do tags that already name some other entity.
    if loose(tag) in known or registry.resolve(tag) not in (None, key):
        return False
    # Nor do everyday words and their plurals ("maximum" for Max, "slices" for Slice), or known mistakes.
    if (key, tag.lower()) in WRONG_ALIASES or tag.lower() in words or tag.lower().removesuffix("s") in words:
        return False
    return _keeps(tag, "other") and not _word_ambiguous(tag, words)


def _so_question_counts(path: Path) -> dict[str, int]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["TagName"]: int(row["Count"] or 0) for row in csv.DictReader(handle)}


def _so_synonyms(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        # Only approved synonyms: proposals that never passed review are often wrong.
        pairs = {
            (row["SourceTagName"], row["TargetTagName"])
            for row in csv.DictReader(handle)
            if row["ApprovalDate"]
        }
    return sorted(pairs)


# --- build and write ------------------------------------------------------------------------------------
def json_line(obj: dict[str, Any]) -> str:
    """One JSON Lines line (without the newline) in the bundle's fixed, compact encoding."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _meta(lines: Iterable[str], licence: str, sources: Sequence[Source]) -> dict[str, Any]:
    digest = hashlib.sha256("".join(line + "\n" for line in lines).encode("utf-8")).hexdigest()[:8]
    return {
        "_meta": {
            "format": FORMAT,
            "version": f"{SNAPSHOT_DATE}-{digest}",
            "licence": licence,
            "sources": [source.to_json() for source in sources],
        }
    }


def build(sources: Path, packages: Path | None = None) -> BuildResult:
    """Read every source under ``sources`` (and the package lists in ``packages``) and return the merged
    taxonomy and the Stack Overflow aliases."""
    registry = Registry()
    _add_topics(registry, sources)
    _add_curated(registry)
    modern.add_concepts(registry, modern.read_concepts(), CURATED_SOURCE.name, RANK_CURATED)
    _add_linguist(registry, sources)
    _add_devicon(registry, sources)
    _add_esco(registry, sources)
    words = common_words(sources)
    _add_onet(registry, sources, words)
    facts = modern.read_packages(packages, sources / "stackoverflow-sede" / "Tags.csv")
    everyday = words | STOPWORDS
    modern.add_simple_icons(registry, sources, facts, SIMPLE_ICONS.name, RANK_WEAK, everyday, HOMONYM_WORDS)
    modern.add_cncf(registry, sources, CNCF.name, RANK_WEAK, everyday)
    for key in sorted(GENERIC_ENTITIES):
        registry.drop(key)
    onet = _read_onet(sources)
    _weigh(registry, facts, {tech.name for tech in onet if tech.hot}, _onet_kept(onet))
    for key, aliases in sorted(EXTRA_ALIASES.items()):
        if key in registry.drafts:  # cut-down test sources may lack it
            registry.add_aliases(registry.drafts[key], aliases, trusted=True)
    entities = _finish(registry, words)
    extras = _stackoverflow(sources, registry, entities, words)
    return BuildResult(
        entities=entities,
        stackoverflow=extras,
        meta=_meta((json_line(entity.to_json()) for entity in entities), BUNDLE_LICENCE, BUNDLE_SOURCES),
        stackoverflow_meta=_meta(
            (json_line(extra.to_json()) for extra in extras), STACKOVERFLOW_LICENCE, (STACKOVERFLOW,)
        ),
    )


def _onet_kept(onet: Sequence[_OnetTechnology]) -> set[str]:
    """O*NET names worth keeping without another source: software classes of our trade ("Clustering
    software") and generic kinds ("Web browser"), as opposed to commodity products ("1CadCam Unigraphics")."""
    kept = set()
    for tech in onet:
        name, full, _ = _onet_forms(tech.name)
        generic = all(word == word.lower() for word in full.split()[1:])
        if tech.hot or generic or tech.classes.intersection(_ONET_CATEGORIES):
            kept.update((name, full))
    return kept


def _weigh(registry: Registry, facts: modern.Packages, hot: set[str], onet_kept: set[str]) -> None:
    """Give each draft its popularity; drop O*NET-only commodity products that no source shows anyone
    uses (issue 15)."""
    for key in sorted(registry.drafts):
        draft = registry.drafts[key]
        names = (draft.name, *draft.aliases)
        popular = modern.popularity(draft, facts, any(name in hot for name in names))
        if popular and (facts.pypi_rank(draft.name) or facts.npm_downloads(draft.name)):
            draft.sources.add(PACKAGES.name)
        if draft.sources == {ONET.name} and not popular and not onet_kept.intersection(names):
            registry.drop(key)
            continue
        draft.popularity = popular


def write(result: BuildResult, out_dir: Path) -> None:
    """Write taxonomy.jsonl and taxonomy-stackoverflow.jsonl into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_lines(out_dir / "taxonomy.jsonl", result.meta, (entity.to_json() for entity in result.entities))
    _write_lines(
        out_dir / "taxonomy-stackoverflow.jsonl",
        result.stackoverflow_meta,
        (extra.to_json() for extra in result.stackoverflow),
    )


def _write_lines(path: Path, header: dict[str, Any], rows: Iterable[dict[str, Any]]) -> None:
    text = "".join(json_line(row) + "\n" for row in (header, *rows))
    path.write_text(text, encoding="utf-8", newline="\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: build from --sources and write to --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sources", type=Path, required=True, help="the taxonomy-sources folder")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .jsonl files")
    parser.add_argument("--packages", type=Path, help="the package-popularity folder (PyPI and npm lists)")
    args = parser.parse_args(argv)
    result = build(args.sources, args.packages)
    write(result, args.out)
    aliases = sum(len(entity.aliases) for entity in result.entities)
    print(
        f"{len(result.entities)} entities, {aliases} aliases, {len(result.stackoverflow)} Stack Overflow "
        f"aliases; version {result.meta['_meta']['version']}"
    )


if __name__ == "__main__":
    main()
