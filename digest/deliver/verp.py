"""VERP return paths (issue 19): each digest's envelope sender names its delivery, signed.

    bounces+<delivery id>.<signature>@<DIGEST_BOUNCE_DOMAIN>

Most bounces arrive after the SMTP server said 250, addressed to the envelope sender. Naming the delivery
there (variable envelope return path, D. J. Bernstein, 1997) tells which delivery, and so which address,
bounced without trusting anything else in the report; the HMAC (``tokens.short_signature``) makes a report
for a delivery nobody sent to a forged address change nothing.
"""

from __future__ import annotations

import re

from digest.tokens import BOUNCE, check_short_signature, short_signature

LOCAL = "bounces"
_ADDRESS = re.compile(rf"{LOCAL}\+(?P<id>[0-9]{{1,18}})\.(?P<signature>[0-9a-f]+)@(?P<domain>[^@\s]+)", re.I)


def return_path(delivery_id: int, secret: str, domain: str) -> str:
    """The VERP address of a delivery."""
    return f"{LOCAL}+{delivery_id}.{short_signature(secret, BOUNCE, str(delivery_id))}@{domain}"


def delivery_of(address: str, secret: str) -> int | None:
    """The delivery a VERP address names, or None if it is not one or its signature is wrong (forged)."""
    found = _ADDRESS.fullmatch(address.strip().strip("<>"))
    if found is None:
        return None
    delivery_id = found.group("id")
    if not check_short_signature(secret, BOUNCE, delivery_id, found.group("signature")):
        return None
    return int(delivery_id)


def find_in(text: str, secret: str) -> int | None:
    """The first correctly signed VERP address anywhere in ``text`` (a header, a report's body)."""
    for found in _ADDRESS.finditer(text):
        delivery_id = delivery_of(found.group(0), secret)
        if delivery_id is not None:
            return delivery_id
    return None
