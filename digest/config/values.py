"""The values settings take apart: addresses, limits, mailboxes, secrets and keys. Each parser raises
``ValueError`` with what it accepts, which ``load_settings`` turns into one line naming the variable.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from digest.errors import InvalidInputError
from digest.vocabulary import parse_duration

ENV_PREFIX = "DIGEST_"
# Secrets: 32 characters of a random alphabet are ~190 bits; a known or one-letter value is none (issue 14).
SECRET_MIN = 32
KNOWN_DEFAULTS = frozenset(
    {"change-me-in-production", "changeme", "change-me", "secret", "password", "test-secret", "digest"}
)
KNOWN_PHRASES = ("change-me", "changeme", "change_me", "replace-me", "your-secret", "example")
# RFC 5322 dot-atom: no spaces, quotes, angle brackets or control characters.
ADDRESS_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
GENERATE_HINT = "e.g. the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
DNS_NAME = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
# Items are kept at least as long as the daily figures can still be rebuilt from them (issue 19): a skill
# page's 90 days and the 4 weeks before them (site.figures REACH_DAYS is 118).
MIN_ITEM_RETENTION = 120 * 86400
SNS_TOPIC = re.compile(r"arn:aws(?:-[a-z]+)*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?")
MAILBOX_HINT = "accepts a maildir path or imaps://USER:PASSWORD@HOST[:PORT]/MAILBOX"


@dataclass(frozen=True, slots=True)
class Mailbox:
    """Where bounces arrive (``DIGEST_BOUNCE_MAILBOX``): a maildir, or an IMAP folder over TLS."""

    maildir: Path | None = None
    host: str = ""
    port: int = 993
    user: str = ""
    password: str = ""
    folder: str = "INBOX"


def parse_mailbox(text: str) -> Mailbox:
    """A maildir path (``maildir://PATH`` or a plain path) or ``imaps://user:pass@host[:port]/FOLDER``;
    ``ValueError`` naming what it accepts. Only TLS: IMAP credentials never cross the network in clear."""
    parts = urlsplit(text)
    if parts.scheme in ("", "maildir"):
        path = unquote(parts.netloc + parts.path) if parts.scheme else text
        if not path.strip():
            raise ValueError(MAILBOX_HINT)
        return Mailbox(maildir=Path(path).expanduser().resolve())
    try:
        port = parts.port or 993
    except ValueError:
        port = 0
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if parts.scheme != "imaps" or not parts.hostname or not parts.username or not parts.password or not port:
        raise ValueError(f"{_redacted(text)!r}: {MAILBOX_HINT}")
    return Mailbox(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=folder,
    )


def _redacted(url: str) -> str:
    """``url`` without its password, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


@dataclass(frozen=True, slots=True)
class HostLimit:
    """Feed requests at once to a host and the least time between two of them starting (issue 16)."""

    concurrency: int
    spacing: timedelta = timedelta(0)


def parse_host_limits(text: str) -> dict[str, HostLimit]:
    """``host=N`` or ``host=N/DURATION`` entries, comma-separated; ``ValueError`` naming a bad one."""
    limits: dict[str, HostLimit] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        host, _, rule = entry.partition("=")
        count, _, spacing = rule.partition("/")
        host = host.strip().lower()
        try:
            gap = timedelta(seconds=parse_duration(spacing)) if spacing.strip() else timedelta(0)
        except InvalidInputError:
            gap = None
        if not DNS_NAME.fullmatch(host) or not count.strip().isdigit() or int(count) < 1 or gap is None:
            raise ValueError(f"{entry!r}: want HOST=N or HOST=N/SPACING, e.g. export.arxiv.org=1/3s")
        limits[host] = HostLimit(int(count), gap)
    return limits


def secret_weakness(value: str) -> str:
    """Why ``value`` is unfit to be a secret, or ``""``."""
    lowered = value.lower()
    if len(set(value)) == 1:
        return "is one character repeated"
    if lowered in KNOWN_DEFAULTS or any(phrase in lowered for phrase in KNOWN_PHRASES):
        return "is a published example value"
    if len(value) < SECRET_MIN:
        return f"is {len(value)} characters long"
    if not value.isascii() or not value.isprintable():
        return "must be printable ASCII"
    return ""


def proxy_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of ``DIGEST_TRUSTED_PROXIES``; ``ValueError`` if one is not an address or network."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()
    )


def postmark_auth(value: str) -> str:
    """``USER:PASSWORD`` with a strong password, or ``ValueError``."""
    user, colon, password = value.partition(":")
    if value and not (colon and user and password):
        raise ValueError("accepts USER:PASSWORD, as in the webhook URL configured at Postmark")
    if password and (weakness := secret_weakness(password)):
        raise ValueError(f"the password {weakness}; use at least {SECRET_MIN} random characters")
    return value


def ec_public_key(value: str) -> str:
    """Base64 of a DER ECDSA public key (SendGrid's verification key), or ``ValueError``."""
    if not value:
        return value
    import base64
    import binascii

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("accepts the verification key SendGrid shows (base64 of an ECDSA public key)")
    return value


def sns_topics(value: str) -> str:
    """Comma-separated SNS topic ARNs, or ``ValueError`` naming the first that is not one."""
    for topic in filter(None, (part.strip() for part in value.split(","))):
        if not SNS_TOPIC.fullmatch(topic):
            raise ValueError(
                f"{topic!r} is not an SNS topic ARN such as arn:aws:sns:eu-west-1:123456789012:bounces"
            )
    return value
