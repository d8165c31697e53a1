"""The skill taxonomy: files (``files``), the database copy and its matcher (``store``), the audit of risky
aliases (``audit``) and the sense rules of dictionary-word aliases (``senses``). Loading is idempotent: ids
come from canonical keys (issue 1, 15).
"""

from __future__ import annotations

from digest.ingest.taxonomy.files import (
    BUNDLED,
    BUNDLED_EXTRA,
    DATA,
    Alias,
    Entity,
    Taxonomy,
    json_objects,
    read_bundled,
    read_taxonomy,
    skill_id_for,
)
from digest.ingest.taxonomy.senses import SenseRule, Senses, is_dictionary_word, read_senses
from digest.ingest.taxonomy.store import (
    VERSION_KEY,
    LoadResult,
    Stats,
    add_alias,
    compile_matcher,
    load,
    loaded_version,
    matcher_from,
    merge,
    stats,
)

__all__ = [
    "BUNDLED",
    "BUNDLED_EXTRA",
    "DATA",
    "VERSION_KEY",
    "Alias",
    "Entity",
    "LoadResult",
    "SenseRule",
    "Senses",
    "Stats",
    "Taxonomy",
    "add_alias",
    "compile_matcher",
    "is_dictionary_word",
    "json_objects",
    "load",
    "loaded_version",
    "matcher_from",
    "merge",
    "read_bundled",
    "read_senses",
    "read_taxonomy",
    "skill_id_for",
    "stats",
]
