"""Providers' bounce webhooks (issue 19): bodies signed in the test with each provider's documented scheme
(keys and an SNS certificate generated here; no certificate is ever fetched), applied when they verify,
and refused with a 4xx, changing nothing, when they do not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from digest.config import Settings
from digest.db import transaction
from digest.deliver import suppression, verp
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.models import Delivery, DeliveryEvent, Subscriber, Subscription
from digest.runtime import Runtime
from digest.web import create_app
from tests.web_support import serve

NOW = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
READER = "reader@example.com"
MAILGUN_KEY = "key-0123456789abcdef0123456789abcdef"
POSTMARK = "postmark:pm-webhook-password-0123456789abcdefgh"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:digest-bounces"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sns_certificate() -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(SNS_KEY.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .sign(SNS_KEY, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


CERTIFICATE = sns_certificate()


class LocalCertificates:
    """The SNS certificate fetcher the app is given: answers from memory and records what was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        return CERTIFICATE


@pytest.fixture
def configured(settings: Settings) -> Settings:
    public = SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return settings.model_copy(
        update={
            "mailgun_signing_key": MAILGUN_KEY,
            "postmark_webhook_auth": POSTMARK,
            "sendgrid_public_key": base64.b64encode(public).decode(),
            "sns_topics": TOPIC,
        }
    )


@pytest.fixture
def certificates() -> LocalCertificates:
    return LocalCertificates()


@pytest.fixture
def http(configured: Settings, rt: Runtime, certificates: LocalCertificates) -> Iterator[httpx.Client]:
    with serve(create_app(configured, clock=lambda: NOW, certificates=certificates)) as client:
        yield client


@pytest.fixture
def sent(rt: Runtime) -> int:
    """A digest sent to reader@example.com (the row only: the webhook reads nothing else)."""
    with transaction(rt.sessions) as session:
        subscribe(session, READER, ["Python"], Schedule("daily", 8, 0, "UTC"), NOW, confirmed=True)
        subscription_id = session.scalar(
            select(Subscription.id).join(Subscriber).where(Subscriber.email == READER)
        )
        delivery = Delivery(
            subscription_id=subscription_id,
            window_start=NOW - timedelta(days=1),
            window_end=NOW - timedelta(hours=2),
            status="sent",
            created_at=NOW - timedelta(hours=2),
            finished_at=NOW - timedelta(hours=2),
            message_id="<digest.0@localhost>",
        )
        session.add(delivery)
        session.flush()
        return delivery.id


def state(rt: Runtime) -> tuple[str | None, list[str], int]:
    """The reader's suppression reason, the late events of their deliveries, and their bounce count."""
    with transaction(rt.sessions) as session:
        entry = suppression.find(session, rt.settings.secret_key, READER)
        late = list(
            session.scalars(
                select(DeliveryEvent.event).where(
                    DeliveryEvent.event.in_(("bounced", "soft-bounced", "complained"))
                )
            )
        )
        bounces = session.scalar(select(Subscriber.bounces).where(Subscriber.email == READER))
    return (entry.reason if entry else None), late, int(bounces or 0)


UNTOUCHED = (None, [], 0)


# Mailgun: HMAC-SHA256(signing key, timestamp + token), hex.
def mailgun_body(event: dict[str, Any], *, key: str = MAILGUN_KEY, at: datetime = NOW) -> bytes:
    timestamp, token = str(int(at.timestamp())), "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event}
    ).encode()


def mailgun_failure(rt: Runtime, delivery_id: int, severity: str = "permanent") -> dict[str, Any]:
    return {
        "event": "failed",
        "severity": severity,
        "recipient": READER,
        "reason": "bounce",
        "delivery-status": {"code": 550, "description": "5.1.1 The email account does not exist"},
        "envelope": {"sender": verp.return_path(delivery_id, rt.settings.secret_key, "localhost")},
        "message": {"headers": {"message-id": f"digest.{delivery_id}@localhost"}},
    }


def test_a_signed_mailgun_failure_bounces_and_suppresses(rt: Runtime, http: httpx.Client, sent: int) -> None:
    answer = http.post("/webhooks/mailgun", content=mailgun_body(mailgun_failure(rt, sent)))

    assert answer.status_code == 200, answer.text
    assert answer.json()["reports"][0]["delivery"] == sent
    assert state(rt) == (suppression.BOUNCE, ["bounced"], 1)
    # The provider retries a call it thinks failed: nothing is counted twice.
    assert http.post("/webhooks/mailgun", content=mailgun_body(mailgun_failure(rt, sent))).status_code == 200
    assert state(rt) == (suppression.BOUNCE, ["bounced"], 1)


def test_a_temporary_mailgun_failure_is_a_soft_bounce(rt: Runtime, http: httpx.Client, sent: int) -> None:
    body = mailgun_body(mailgun_failure(rt, sent, severity="temporary"))
    assert http.post("/webhooks/mailgun", content=body).status_code == 200
    assert state(rt) == (None, ["soft-bounced"], 1)


@pytest.mark.parametrize(
    "forge",
    [
        lambda rt, sent: mailgun_body(mailgun_failure(rt, sent), key="key-not-the-signing-key-0123456789"),
        lambda rt, sent: mailgun_body(mailgun_failure(rt, sent), at=NOW - timedelta(hours=1)),
        # Mailgun signs the timestamp and token (its scheme), so those are what a forger would change.
        lambda rt, sent: mailgun_body(mailgun_failure(rt, sent)).replace(b"a8ce0edb", b"b8ce0edb"),
        lambda rt, sent: json.dumps({"event-data": mailgun_failure(rt, sent)}).encode(),
    ],
    ids=["wrong key", "replayed an hour later", "token changed", "no signature"],
)
def test_a_mailgun_call_that_does_not_verify_changes_nothing(
    rt: Runtime, http: httpx.Client, sent: int, forge: Any
) -> None:
    answer = http.post("/webhooks/mailgun", content=forge(rt, sent))
    assert answer.status_code == 403
    assert state(rt) == UNTOUCHED


def test_a_mailgun_complaint_with_a_forged_verp_sender_and_no_message_id_names_nothing(
    rt: Runtime, http: httpx.Client, sent: int
) -> None:
    event = {
        "event": "complained",
        "recipient": "someone-else@example.com",
        "envelope": {"sender": f"bounces+{sent}.{'0' * 20}@localhost"},
    }
    answer = http.post("/webhooks/mailgun", content=mailgun_body(event))
    assert answer.status_code == 200
    assert answer.json()["reports"][0]["outcome"] == "unknown delivery"
    assert state(rt) == UNTOUCHED


def postmark_auth(credentials: str = POSTMARK) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def test_a_postmark_spam_complaint_with_its_credentials_suppresses_the_latest_recipient(
    rt: Runtime, http: httpx.Client, sent: int
) -> None:
    body = {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "Email": READER, "Description": "spam"}

    answer = http.post("/webhooks/postmark", json=body, headers=postmark_auth())

    assert answer.status_code == 200, answer.text
    assert answer.json()["reports"][0]["delivery"] == sent
    assert state(rt) == (suppression.COMPLAINT, ["complained"], 0)


def test_postmark_without_the_right_credentials_is_asked_for_them(
    rt: Runtime, http: httpx.Client, sent: int
) -> None:
    body = {"RecordType": "Bounce", "Type": "HardBounce", "Email": READER}
    for headers in ({}, postmark_auth("postmark:wrong"), {"Authorization": "Bearer x"}):
        answer = http.post("/webhooks/postmark", json=body, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Basic")
    assert state(rt) == UNTOUCHED


def sendgrid_headers(
    body: bytes, *, at: datetime = NOW, key: ec.EllipticCurvePrivateKey = SENDGRID_KEY
) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def sendgrid_events(sent: int) -> bytes:
    return json.dumps(
        [
            {"email": READER, "event": "delivered", "smtp-id": f"<digest.{sent}@localhost>"},
            {
                "email": READER,
                "event": "bounce",
                "type": "bounce",
                "status": "5.1.1",
                "reason": "550 5.1.1 unknown user",
                "smtp-id": f"<digest.{sent}@localhost>",
            },
        ]
    ).encode()


def test_a_signed_sendgrid_batch_applies_its_bounce(rt: Runtime, http: httpx.Client, sent: int) -> None:
    body = sendgrid_events(sent)
    answer = http.post("/webhooks/sendgrid", content=body, headers=sendgrid_headers(body))
    assert answer.status_code == 200, answer.text
    assert [report["delivery"] for report in answer.json()["reports"]] == [sent]
    assert state(rt) == (suppression.BOUNCE, ["bounced"], 1)


def test_a_sendgrid_batch_that_does_not_verify_changes_nothing(
    rt: Runtime, http: httpx.Client, sent: int
) -> None:
    body = sendgrid_events(sent)
    other = ec.generate_private_key(ec.SECP256R1())
    for headers, content in (
        (sendgrid_headers(body, key=other), body),
        (sendgrid_headers(body), body.replace(b"5.1.1", b"5.1.2")),
        (sendgrid_headers(body, at=NOW - timedelta(hours=2)), body),
        ({"Content-Type": "application/json"}, body),
        (sendgrid_headers(body) | {"X-Twilio-Email-Event-Webhook-Signature": "not base64!"}, body),
    ):
        assert http.post("/webhooks/sendgrid", content=content, headers=headers).status_code == 403
    assert state(rt) == UNTOUCHED


def sns_body(
    message: dict[str, Any],
    *,
    kind: str = "Notification",
    url: str = CERT_URL,
    topic: str = TOPIC,
    version: str = "2",
) -> bytes:
    fields = {
        "Type": kind,
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": topic,
        "Message": json.dumps(message),
        "Timestamp": "2026-11-16T09:29:00.000Z",
    }
    if kind != "Notification":
        fields |= {
            "Token": "2336412f37",
            "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
        }
    order = ("Message", "MessageId", "Subject", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
    signed = "".join(f"{name}\n{fields[name]}\n" for name in order if name in fields).encode()
    # Version 1 is SHA1withRSA: SNS's scheme, which the test must sign with.
    algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()  # noqa: S303
    signature = SNS_KEY.sign(signed, padding.PKCS1v15(), algorithm)
    return json.dumps(
        fields
        | {
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": url,
        }
    ).encode()


def ses_bounce(rt: Runtime, sent: int, bounce_type: str = "Permanent") -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": READER, "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
            ],
        },
        "mail": {
            "source": verp.return_path(sent, rt.settings.secret_key, "localhost"),
            "commonHeaders": {"messageId": "<elsewhere@example.net>"},
        },
    }


@pytest.mark.parametrize("version", ["1", "2"])
def test_an_ses_bounce_through_signed_sns_bounces_the_delivery_its_verp_sender_names(
    rt: Runtime, http: httpx.Client, sent: int, certificates: LocalCertificates, version: str
) -> None:
    answer = http.post("/webhooks/ses", content=sns_body(ses_bounce(rt, sent), version=version))

    assert answer.status_code == 200, answer.text
    assert answer.json()["reports"][0]["delivery"] == sent
    assert state(rt) == (suppression.BOUNCE, ["bounced"], 1)
    assert certificates.asked == [CERT_URL]


def test_an_ses_complaint_suppresses_as_a_complaint(rt: Runtime, http: httpx.Client, sent: int) -> None:
    complaint = {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": READER}], "complaintFeedbackType": "abuse"},
        "mail": {"source": verp.return_path(sent, rt.settings.secret_key, "localhost")},
    }
    assert http.post("/webhooks/ses", content=sns_body(complaint)).status_code == 200
    assert state(rt) == (suppression.COMPLAINT, ["complained"], 0)


FOREIGN_TOPIC = "arn:aws:sns:eu-west-1:999999999999:other"


@pytest.mark.parametrize(
    ("forge", "topic", "asked"),
    [
        (lambda body: body.replace(b"Permanent", b"Transient"), TOPIC, True),
        (lambda body: body, FOREIGN_TOPIC, False),
        (lambda body: body.replace(b"amazonaws.com/", b"amazonaws.com.evil.example/"), TOPIC, False),
        (lambda body: body.replace(b"https://sns.", b"http://sns."), TOPIC, False),
        (lambda body: body.replace(b'"SignatureVersion": "2"', b'"SignatureVersion": "3"'), TOPIC, True),
    ],
    ids=[
        "body changed",
        "foreign topic",
        "certificate elsewhere",
        "certificate over http",
        "unknown version",
    ],
)
def test_an_sns_message_that_does_not_verify_changes_nothing_and_fetches_no_foreign_certificate(
    rt: Runtime,
    http: httpx.Client,
    sent: int,
    certificates: LocalCertificates,
    forge: Any,
    topic: str,
    asked: bool,
) -> None:
    body = forge(sns_body(ses_bounce(rt, sent), topic=topic))

    answer = http.post("/webhooks/ses", content=body)

    assert answer.status_code == 403
    assert state(rt) == UNTOUCHED
    assert certificates.asked == ([CERT_URL] if asked else [])


def test_an_sns_subscription_confirmation_is_verified_and_not_followed(
    rt: Runtime, http: httpx.Client, certificates: LocalCertificates
) -> None:
    answer = http.post("/webhooks/ses", content=sns_body({}, kind="SubscriptionConfirmation"))
    assert answer.status_code == 200
    assert answer.json() == {"reports": []}
    assert certificates.asked == [CERT_URL]


@pytest.mark.parametrize(
    "path", ["/webhooks/mailgun", "/webhooks/postmark", "/webhooks/sendgrid", "/webhooks/ses"]
)
@pytest.mark.parametrize(
    "content", [b"", b"not json", b"[1, 2]", b'{"Type": 5}', b'{"signature": "x"}', "\u2603".encode() * 10]
)
def test_malformed_bodies_are_refused_with_a_4xx_never_a_500(
    rt: Runtime, http: httpx.Client, path: str, content: bytes
) -> None:
    answer = http.post(path, content=content, headers=postmark_auth() if "postmark" in path else {})
    # A JSON object of a kind a provider sends and we do not read (Postmark's "Open"): 200, nothing done.
    assert 400 <= answer.status_code < 500 or answer.json() == {"reports": []}, (path, content, answer.text)
    assert state(rt) == UNTOUCHED


def test_a_body_past_one_mebibyte_is_refused_unread(rt: Runtime, http: httpx.Client, sent: int) -> None:
    answer = http.post("/webhooks/mailgun", content=b"{" + b" " * (1024 * 1024) + b"}")
    assert answer.status_code == 413
    assert state(rt) == UNTOUCHED


def test_a_provider_not_configured_answers_404(settings: Settings, rt: Runtime) -> None:
    with serve(create_app(settings, clock=lambda: NOW)) as client:
        for path in ("/webhooks/mailgun", "/webhooks/postmark", "/webhooks/sendgrid", "/webhooks/ses"):
            assert client.post(path, content=b"{}").status_code == 404
