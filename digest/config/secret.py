"""The generated secret key, kept in DIGEST_HOME so signed links survive restarts (issue 14)."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from digest.config.values import secret_weakness
from digest.errors import ConfigError


def stored_secret(home: Path) -> str:
    """Generate the secret once and keep it in DIGEST_HOME, so signed links survive restarts.

    Written whole to a temporary name and renamed into place: another process starting at the same time
    sees no file or the whole key, never an empty one (issue 14, finding 1). ``os.link`` fails if a key is
    already there, so two processes racing agree on the first one.
    """
    path = home / "secret_key"
    if path.exists():
        return _read_secret(path)
    try:
        home.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=".secret_key.", dir=home)
    except OSError as exc:
        raise ConfigError(f"DIGEST_HOME: cannot write {home}: {exc.strerror}") from None
    try:
        # mkstemp creates the file 0600: the key is never readable by others, even for a moment.
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    try:
        key = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"DIGEST_SECRET_KEY: cannot read the generated key {path}: {exc}") from None
    if weakness := secret_weakness(key):
        raise ConfigError(f"DIGEST_SECRET_KEY: the key in {path} {weakness}; delete the file to generate one")
    return key
