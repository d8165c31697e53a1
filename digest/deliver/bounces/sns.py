"""Amazon SNS message signatures (issue 19): how SES bounce and complaint notifications reach us.

SNS signs each message with the key of a certificate it names by URL (docs.aws.amazon.com, "Verifying the
signatures of Amazon SNS messages"). The URL must be an SNS host's ``SimpleNotificationService-*.pem`` over
HTTPS, or a forger would sign with a certificate of their own; the topic must be one of
``DIGEST_SNS_TOPICS``. The certificate is fetched by a function passed in (the web edge's, cached), so this
module never touches the network and tests give it a certificate of their own.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from digest.errors import InvalidInputError, SignatureError

# sns.<region>.amazonaws.com (.com.cn in China); nothing else may name the signing certificate.
CERT_URL = re.compile(
    r"https://sns\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/SimpleNotificationService-[A-Za-z0-9]+\.pem"
)
# The fields signed, in this order, per message type; Subject only when present.
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
CertificateFetcher = Callable[[str], bytes]


@dataclass(frozen=True, slots=True)
class SnsMessage:
    """A verified SNS message: its type, topic and ``Message``; ``subscribe_url`` for a confirmation."""

    type: str
    topic: str
    message: str
    subscribe_url: str | None

    def notification(self) -> dict[str, Any]:
        """The JSON ``Message`` of a notification (an SES event)."""
        try:
            payload = json.loads(self.message)
        except ValueError:
            raise InvalidInputError("the SNS Message is not JSON") from None
        if not isinstance(payload, dict):
            raise InvalidInputError("the SNS Message is not a JSON object")
        return payload


def verify(body: bytes, topics: frozenset[str], fetch: CertificateFetcher, now: datetime) -> SnsMessage:
    """The SNS message in ``body``; ``SignatureError`` unless its topic is allowed and its signature verifies
    with a valid certificate from an SNS URL."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError("the body is not JSON") from None
    if not isinstance(payload, dict) or not all(isinstance(value, str) for value in payload.values()):
        raise InvalidInputError("the body is not an SNS message")
    kind = payload.get("Type", "")
    if kind not in SIGNED:
        raise InvalidInputError(f"unknown SNS message type {kind[:40]!r}")
    if payload.get("TopicArn") not in topics:
        raise SignatureError("the topic is not one of DIGEST_SNS_TOPICS")
    url = payload.get("SigningCertURL", "")
    if not CERT_URL.fullmatch(url):
        raise SignatureError("the signing certificate's URL is not an Amazon SNS one")
    signed = "".join(f"{name}\n{payload[name]}\n" for name in SIGNED[kind] if name in payload)
    _check(
        signed.encode(), payload.get("Signature", ""), payload.get("SignatureVersion", ""), fetch(url), now
    )
    return SnsMessage(kind, payload["TopicArn"], payload.get("Message", ""), payload.get("SubscribeURL"))


def _check(signed: bytes, signature: str, version: str, pem: bytes, now: datetime) -> None:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    # Version 1 is SHA1withRSA, version 2 SHA256withRSA: SNS chooses, per topic, and still defaults to 1.
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)  # noqa: S303 (SNS's own scheme)
    if algorithm is None:
        raise SignatureError(f"unknown SignatureVersion {version[:10]!r}")
    try:
        certificate = x509.load_pem_x509_certificate(pem)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise SignatureError("the signing certificate is not valid now")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError("the signing certificate has no RSA key")
        key.verify(base64.b64decode(signature), signed, padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not verify") from None
