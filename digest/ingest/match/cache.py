"""A compiled ``Matcher`` kept in a file, so a short-lived process loads it instead of compiling it.

Issue 15 item 6: compiling the taxonomy's 38,000 keys is most of ``digest tag``'s start-up, while loading
the pickled result takes a fraction of it. The file is keyed by a hash of everything the matcher is built
from: the alias and skill rows and the taxonomy version, and this package's own source and the
automaton's extension (a change of either may change the objects inside). A file whose key differs is
stale and is rebuilt, as is one that is truncated or corrupt (its payload carries a SHA-256, checked
before anything is unpickled), so a bad file costs one compile, never an error.

The file lives in the service's own home (``DIGEST_HOME``), written by the service; a pickle is trusted no
more than the settings and database beside it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import ahocorasick

from digest.ingest.match import AliasSpec, Matcher, SkillInfo

# Bumped when the file's layout changes; the code fingerprint covers changes of what is pickled.
_MAGIC = b"digest-matcher 1\n"
_DIGEST = hashlib.sha256().digest_size * 2


def cached_matcher(
    path: Path, aliases: Sequence[AliasSpec], skills: dict[str, SkillInfo], version: str
) -> Matcher:
    """The matcher of these inputs: loaded from ``path`` if it holds theirs, else compiled and stored."""
    key = inputs_key(aliases, skills, version)
    matcher = _read(path, key)
    if matcher is None:
        matcher = Matcher(aliases, skills, version=version)
        _write(path, key, matcher)
    return matcher


def inputs_key(aliases: Sequence[AliasSpec], skills: dict[str, SkillInfo], version: str) -> bytes:
    """The hex SHA-256 of the inputs, in their order (the order of aliases can order a key's meanings)."""
    digest = hashlib.sha256(_code_fingerprint())
    digest.update(version.encode("utf-8", "surrogatepass"))
    rows = (
        [(a.skill_id, a.text, a.ambiguous, a.case_sensitive) for a in aliases],
        [(i, s.name, s.category, s.popularity, sorted(s.parents)) for i, s in skills.items()],
    )
    # ``repr`` of tuples of str, bool and float is exact and runs in C: 12,000 rows in about 10 ms.
    digest.update(repr(rows).encode("utf-8", "surrogatepass"))
    return digest.hexdigest().encode("ascii")


def _code_fingerprint() -> bytes:
    digest = hashlib.sha256(sys.version.encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    extension = os.stat(ahocorasick.__file__ or "")
    digest.update(f"{ahocorasick.__file__}:{extension.st_size}:{extension.st_mtime_ns}".encode())
    return digest.digest()


def _read(path: Path, key: bytes) -> Matcher | None:
    """The matcher stored under ``key`` in ``path``; None if the file is missing, stale or damaged."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header = len(_MAGIC) + len(key) + 1 + _DIGEST + 1
    if data[: len(_MAGIC)] != _MAGIC or data[len(_MAGIC) : len(_MAGIC) + len(key)] != key:
        return None
    payload = memoryview(data)[header:]
    if data[header - _DIGEST - 1 : header - 1] != hashlib.sha256(payload).hexdigest().encode("ascii"):
        return None
    try:
        # The service's own file, its SHA-256 checked above (module docstring).
        matcher = pickle.loads(payload)  # noqa: S301
    except Exception:  # any failure to unpickle (a class renamed since) means "compile it again"
        return None
    return matcher if isinstance(matcher, Matcher) else None


def _write(path: Path, key: bytes, matcher: Matcher) -> None:
    """Store the matcher atomically (a reader sees the old file or the new one); a failure only costs the
    next process a compile, so it is not an error (a read-only home still tags)."""
    payload = pickle.dumps(matcher, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(payload).hexdigest().encode("ascii")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(b"".join((_MAGIC, key, b"\n", digest, b"\n")))
            handle.write(payload)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
