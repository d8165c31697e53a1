"""Build ``digest/data/skill-repositories.json``: each skill's GitHub repository, for its releases feed.

GitHub Explore topics carry a ``github_url``; where it names one repository (``owner/repo``, not an
organisation) and the topic is a skill of the bundled taxonomy, the skill's key maps to it. The content is
GitHub Explore's (CC BY 4.0, attributed in digest/data/NOTICE.md like the taxonomy). Run::

    python -m tools.taxonomy.repositories --sources ../shared/data/taxonomy-sources --out digest/data
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import yaml

_FRONT_MATTER = re.compile(r"---\n(.*?)\n---", re.S)
_REPOSITORY = re.compile(r"https://github\.com/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)/?")


def repositories(sources: Path, taxonomy: Path) -> dict[str, str]:
    """Skill key -> ``owner/repo`` for the topics of ``sources`` that are skills of ``taxonomy``."""
    keys = {row["key"] for row in map(json.loads, taxonomy.read_text().splitlines()) if "key" in row}
    found: dict[str, str] = {}
    for path in sorted((sources / "github-explore-topics" / "topics").glob("*/index.md")):
        match = _FRONT_MATTER.match(path.read_text(encoding="utf-8"))
        if not match:
            continue
        meta = yaml.safe_load(match.group(1))
        repository = _REPOSITORY.fullmatch(str(meta.get("github_url") or ""))
        if repository and str(meta.get("topic")) in keys:
            found[str(meta["topic"])] = repository[1]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sources", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    found = repositories(arguments.sources, arguments.out / "taxonomy.jsonl")
    text = json.dumps(found, indent=0, sort_keys=True, ensure_ascii=False) + "\n"
    (arguments.out / "skill-repositories.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
