"""DKIM signing of serialised messages (RFC 6376): the transports sign exactly the bytes they hand over."""

from __future__ import annotations

from pathlib import Path

import dkim
import dkim.crypto

from digest.errors import ConfigError, MailError

# RFC 8058 section 4 requires List-Unsubscribe and List-Unsubscribe-Post to be covered by the signature.
# Listing a header the message lacks signs its absence, so nobody can add it on the way.
DKIM_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
)


class DkimSigner:
    """Adds a DKIM-Signature (RFC 6376, rsa-sha256, relaxed/relaxed) to serialised messages."""

    def __init__(self, private_key: bytes, *, selector: str, domain: str) -> None:
        try:
            dkim.crypto.parse_pem_private_key(private_key)
        except (dkim.crypto.UnparsableKeyError, ValueError):
            raise ConfigError("DIGEST_DKIM_KEY: not an unencrypted PEM RSA private key") from None
        self.private_key = private_key
        self.selector, self.domain = selector, domain

    def sign(self, data: bytes, *, linesep: bytes = b"\r\n") -> bytes:
        """``data`` with a DKIM-Signature header in front, its lines ending in ``linesep``."""
        try:
            header = dkim.sign(
                data,
                self.selector.encode(),
                self.domain.encode(),
                self.private_key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[name.encode() for name in DKIM_HEADERS],
                linesep=linesep,
            )
        except dkim.DKIMException as exc:
            raise MailError(f"cannot DKIM-sign the message: {exc}", permanent=True) from None
        return bytes(header) + data


def signer_for(key_file: str, *, selector: str, domain: str) -> DkimSigner | None:
    """The signer of ``DIGEST_DKIM_KEY``, or None when it is empty (no signing)."""
    if not key_file:
        return None
    try:
        key = Path(key_file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"DIGEST_DKIM_KEY: cannot read {key_file}: {exc.strerror}") from None
    return DkimSigner(key, selector=selector, domain=domain)
