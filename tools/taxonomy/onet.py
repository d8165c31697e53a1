"""O*NET technology skills: products and kinds of software, with acronyms mined from "Full name ACRONYM"."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from tools.taxonomy.registry import ONET, RANK_ONET, Registry, initials_fit, merge_name

# O*NET products outside the tech classes are kept when at least this many occupations use them.
MIN_ONET_OCCUPATIONS = 3
ONET_CATEGORIES: dict[str, str] = {
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


# --- O*NET ----------------------------------------------------------------------------------------------
@dataclass
class OnetTechnology:
    name: str
    hot: bool = False
    classes: set[str] = field(default_factory=set)
    occupations: set[str] = field(default_factory=set)


def read_onet(root: Path) -> list[OnetTechnology]:
    technologies: dict[str, OnetTechnology] = {}
    path = root / "onet-29.2" / "Technology Skills.txt"
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            tech = technologies.setdefault(row["Example"], OnetTechnology(row["Example"]))
            tech.hot = tech.hot or "Y" in (row["Hot Technology"], row["In Demand"])
            tech.classes.add(row["Commodity Title"])
            tech.occupations.add(row["O*NET-SOC Code"])
    return [technologies[name] for name in sorted(technologies)]


def onet_forms(name: str) -> tuple[str, str, str]:
    """Split "Structured query language SQL software" into its name, expansion and acronym."""
    name = _TRAILING_SOFTWARE.sub("", name).strip()
    match = _TRAILING_ACRONYM.match(name)
    if match and initials_fit(match["full"], match["acronym"]):
        return name, match["full"], match["acronym"]
    return name, name, ""


def _strip_vendor(name: str) -> str:
    for vendor in _VENDORS:
        if name.startswith(vendor + " ") and len(name) > len(vendor) + 2:
            return name[len(vendor) + 1 :]
    return name


def add_onet(registry: Registry, root: Path, words: frozenset[str]) -> None:
    for tech in read_onet(root):
        name, full, acronym = onet_forms(tech.name)
        stripped = [_strip_vendor(name), _strip_vendor(full)]
        draft = registry.find([name, full, *stripped, acronym] if acronym else [name, full, *stripped])
        if draft is None:
            if full.lower() in words or not _onet_worth_adding(tech, full, acronym):
                registry.reject(ONET.name)
                continue
            category = next(
                (ONET_CATEGORIES[c] for c in sorted(tech.classes) if c in ONET_CATEGORIES), "tool"
            )
            draft = registry.create(full, category, RANK_ONET, ONET.name)
        merge_name(draft, full)
        draft.sources.add(ONET.name)
        # "Oracle Java" -> "Java" helps matching, but "Google Cloud" -> "Cloud" is no name to publish.
        products = [form for form in stripped if len(form.split()) > 1 or not form.istitle()]
        registry.add_aliases(
            draft, [form for form in dict.fromkeys([name, full, *products, acronym]) if form], False
        )


def _onet_worth_adding(tech: OnetTechnology, full: str, acronym: str) -> bool:
    if tech.hot:
        return True
    # "Cost accounting software" is a kind of software, not a product: nothing after the first word is
    # capitalised. With an acronym ("Secure shell SSH") it is a named standard, worth it in tech classes.
    words = full.split()
    generic = len(words) > 1 and all(word == word.lower() for word in words[1:])
    tech_class = bool(tech.classes.intersection(ONET_CATEGORIES))
    if generic:
        return bool(acronym) and tech_class
    # Products used in several occupations ("Microsoft Excel") are skills people list, whatever the class.
    return tech_class or len(tech.occupations) >= MIN_ONET_OCCUPATIONS
