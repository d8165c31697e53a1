"""Tests for the mail transports (digest/deliver/mail/) against a real aiosmtpd server on loopback.

Keys and certificates are made here for each run; DKIM is verified against a TXT record handed to dkimpy
directly, so no test asks DNS anything. Pacing runs on a fake clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import mailbox
import os
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from digest.config import load_settings
from digest.deliver.compose import build_message, message_id
from digest.deliver.mail import DKIM_HEADERS, DkimSigner, MaildirMailer, PacedMailer, SmtpMailer, mailer_for
from digest.errors import ConfigError, MailError
from digest.records import ComposedEmail
from digest.runtime import Runtime
from tests.support import free_port, smtp_sink

SENDER = "digest@example.org"
SENT_AT = dt.datetime(2026, 11, 16, 7, 0, tzinfo=dt.UTC)


def digest_message(
    number: int = 1, *, subject: str = "Your Python digest", to: str = "reader@example.com"
) -> EmailMessage:
    """A message with every header a digest carries, built the way digests.py builds it."""
    email = ComposedEmail(subject, f"Item {number}\n", f"<p>Item {number}</p>")
    return build_message(
        email,
        sender=SENDER,
        recipient=to,
        message_id_value=message_id(number, SENDER),
        date=SENT_AT,
        unsubscribe_url=f"https://digest.example.org/u/{number}",
    )


@dataclass(frozen=True)
class DkimKey:
    """A fresh RSA key: the PEM file the service reads and the TXT record DNS would publish."""

    pem: bytes
    path: Path
    txt: bytes

    def dns(self, name: bytes, timeout: int = 5) -> bytes:
        """dkimpy's DNS lookup, answered from memory for digest._domainkey.example.org only."""
        return self.txt if name == b"digest._domainkey.example.org." else b""


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(pem)
    return DkimKey(pem, path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, with its key."""

    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """What the sink presents."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "digest test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        # Its own trust anchor, so it must say it may sign certificates (OpenSSL checks this).
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                key_cert_sign=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Certificate(cert_file, key_file)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog does) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield int(listener.getsockname()[1])


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No DIGEST_ variable and no .env; DIGEST_HOME is a temporary folder, which it returns."""
    for name in list(os.environ):
        if name.startswith("DIGEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGEST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DIGEST_SECRET_KEY", "test-secret-key-0123456789abcdefghijkl")
    return tmp_path / "home"


def with_login(url: str, login: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{login}:{password}@{rest}"


# --- SMTP -----------------------------------------------------------------------------------------------


def test_one_connection_carries_three_messages() -> None:
    with smtp_sink() as sink:
        mailer = mailer_for(sink.url)
        for number in (1, 2, 3):
            mailer.send(digest_message(number))
        mailer.close()

    assert [m["Message-ID"] for m in sink.messages] == [message_id(n, SENDER) for n in (1, 2, 3)]
    assert len(sink.connections) == 1 and sink.ehlos == 1


def test_it_reconnects_when_the_server_dropped_the_kept_connection() -> None:
    with smtp_sink() as sink:
        mailer = mailer_for(sink.url)
        mailer.send(digest_message(1))
        sink.drop_connections()
        mailer.send(digest_message(2))
        mailer.close()

    assert len(sink.messages) == 2
    assert len(sink.connections) == 2


@pytest.mark.parametrize("reply", ["421 4.3.2 shutting down", "451 4.3.0 try again later"])
def test_a_4xx_reply_is_a_temporary_error_with_its_code(reply: str) -> None:
    with smtp_sink() as sink:
        sink.refuse = lambda _rcpt: reply
        mailer = mailer_for(sink.url)
        with pytest.raises(MailError) as refused:
            mailer.send(digest_message())
        mailer.close()

    assert not refused.value.permanent
    assert refused.value.code == int(reply[:3]) and reply[4:] in str(refused.value)
    assert sink.messages == []


def test_a_550_reply_is_a_permanent_error_with_its_code() -> None:
    with smtp_sink() as sink:
        sink.refuse = lambda _rcpt: "550 5.1.1 no such user"
        mailer = mailer_for(sink.url)
        with pytest.raises(MailError) as refused:
            mailer.send(digest_message())
        mailer.close()

    assert refused.value.permanent and refused.value.code == 550
    assert str(refused.value) == "SMTP 550: 5.1.1 no such user"


def test_a_refused_address_keeps_the_connection_for_the_next_message() -> None:
    with smtp_sink() as sink:
        sink.refuse = lambda rcpt: "550 5.1.1 no such user" if rcpt.startswith("gone@") else None
        mailer = mailer_for(sink.url)
        with pytest.raises(MailError):
            mailer.send(digest_message(1, to="gone@example.com"))
        mailer.send(digest_message(2))
        mailer.close()

    assert [m["To"] for m in sink.messages] == ["reader@example.com"]
    assert len(sink.connections) == 1


def test_after_a_421_the_next_message_goes_over_a_new_connection() -> None:
    with smtp_sink() as sink:
        sink.refuse = lambda _rcpt: "421 4.3.2 shutting down"
        mailer = mailer_for(sink.url)
        with pytest.raises(MailError):
            mailer.send(digest_message(1))
        sink.refuse = lambda _rcpt: None
        mailer.send(digest_message(2))
        mailer.close()

    assert len(sink.messages) == 1 and len(sink.connections) == 2


def test_starttls_trusts_a_certificate_from_the_configured_ca_file(certificate: Certificate) -> None:
    with smtp_sink(tls=certificate.server_context()) as sink:
        mailer = mailer_for(sink.url, ca_file=str(certificate.cert_file))
        mailer.send(digest_message())
        mailer.close()

    assert sink.url.startswith("smtp+starttls://")
    assert len(sink.messages) == 1


def test_starttls_refuses_a_certificate_nobody_configured_as_trusted(certificate: Certificate) -> None:
    with smtp_sink(tls=certificate.server_context()) as sink:
        mailer = mailer_for(sink.url)
        with pytest.raises(MailError) as refused:
            mailer.send(digest_message())
        mailer.close()

    assert refused.value.permanent and "certificate not trusted" in str(refused.value)
    assert sink.messages == []


def test_implicit_tls_trusts_a_certificate_from_the_configured_ca_file(certificate: Certificate) -> None:
    with smtp_sink(tls=certificate.server_context(), implicit_tls=True) as sink:
        mailer = mailer_for(sink.url, ca_file=str(certificate.cert_file))
        mailer.send(digest_message(1))
        mailer.send(digest_message(2))
        mailer.close()

    assert sink.url.startswith("smtps://")
    assert len(sink.messages) == 2 and len(sink.connections) == 1


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_it_logs_in_with_the_credentials_of_the_url(certificate: Certificate, mechanism: str) -> None:
    accounts = {"digest@example.org": "p@ss:word"}
    with smtp_sink(tls=certificate.server_context(), accounts=accounts, mechanisms=(mechanism,)) as sink:
        # Reserved characters in the password arrive percent-encoded in the URL.
        url = with_login(sink.url, "digest%40example.org", "p%40ss%3Aword")
        mailer = mailer_for(url, ca_file=str(certificate.cert_file))
        mailer.send(digest_message())
        mailer.close()

    assert sink.logins == [(mechanism, "digest@example.org")]
    assert len(sink.messages) == 1


def test_a_wrong_password_is_a_permanent_error_that_does_not_repeat_the_password(
    certificate: Certificate,
) -> None:
    accounts = {"digest": "right-password"}
    with smtp_sink(tls=certificate.server_context(), accounts=accounts) as sink:
        mailer = mailer_for(
            with_login(sink.url, "digest", "wrong-password"), ca_file=str(certificate.cert_file)
        )
        with pytest.raises(MailError) as refused:
            mailer.send(digest_message())
        mailer.close()

    message = str(refused.value)
    assert refused.value.permanent and refused.value.code == 535
    assert message.startswith("SMTP 535 while logging in:")
    assert "wrong-password" not in message and "right-password" not in message
    assert sink.messages == []


def test_a_refused_connection_is_a_temporary_error() -> None:
    mailer = mailer_for(f"smtp://127.0.0.1:{free_port()}")

    with pytest.raises(MailError) as refused:
        mailer.send(digest_message())

    assert not refused.value.permanent and "refused" in str(refused.value).lower()


# The configured timeout is 0.2 s; this marker only stops a regression from hanging the suite.
@pytest.mark.timeout(10)
def test_a_server_that_never_answers_is_a_temporary_timeout(silent_port: int) -> None:
    mailer = mailer_for(f"smtp://127.0.0.1:{silent_port}", timeout=0.2)

    with pytest.raises(MailError) as silent:
        mailer.send(digest_message())

    assert not silent.value.permanent and str(silent.value) == "SMTP server timed out"


# --- Maildir --------------------------------------------------------------------------------------------


def test_the_maildir_stores_a_message_once_per_message_id_for_any_mail_client(tmp_path: Path) -> None:
    mailer = mailer_for(f"maildir://{tmp_path / 'outbox'}")

    mailer.send(digest_message(1))
    mailer.send(digest_message(1))
    mailer.send(digest_message(2))

    box = mailbox.Maildir(tmp_path / "outbox", create=False)
    assert sorted(str(m["Message-ID"]) for m in box) == [message_id(1, SENDER), message_id(2, SENDER)]
    assert isinstance(mailer, MaildirMailer)
    assert mailer.find(message_id(1, SENDER)) is not None


# --- DKIM -----------------------------------------------------------------------------------------------


def test_a_message_sent_over_smtp_carries_a_dkim_signature_that_verifies(dkim_key: DkimKey) -> None:
    signer = DkimSigner(dkim_key.pem, selector="digest", domain="example.org")
    with smtp_sink() as sink:
        mailer = mailer_for(sink.url, signer=signer)
        mailer.send(digest_message())
        mailer.close()

    [raw] = sink.raw
    assert dkim.verify(raw, dnsfunc=dkim_key.dns)
    signature = str(sink.messages[0]["DKIM-Signature"])
    tags = dict(tag.strip().split("=", 1) for tag in re.sub(r"\s+", "", signature).split(";") if tag)
    assert tags["c"] == "relaxed/relaxed" and tags["d"] == "example.org" and tags["s"] == "digest"
    assert tags["h"].split(":") == [name.lower() for name in DKIM_HEADERS]


def test_a_dkim_signature_fails_once_the_body_or_a_signed_header_is_changed(dkim_key: DkimKey) -> None:
    signer = DkimSigner(dkim_key.pem, selector="digest", domain="example.org")
    with smtp_sink() as sink:
        mailer = mailer_for(sink.url, signer=signer)
        mailer.send(digest_message())
        mailer.close()
    [raw] = sink.raw

    assert not dkim.verify(raw.replace(b"Item 1", b"Item 9"), dnsfunc=dkim_key.dns)
    assert not dkim.verify(
        raw.replace(b"List-Unsubscribe-Post: ", b"List-Unsubscribe-Post: x"), dnsfunc=dkim_key.dns
    )
    assert not dkim.verify(raw.replace(b"Subject: Your", b"Subject: Our"), dnsfunc=dkim_key.dns)


def test_a_header_the_message_lacks_is_signed_as_absent(dkim_key: DkimKey) -> None:
    signer = DkimSigner(dkim_key.pem, selector="digest", domain="example.org")
    message = digest_message()
    del message["List-Id"]
    with smtp_sink() as sink:
        mailer = mailer_for(sink.url, signer=signer)
        mailer.send(message)
        mailer.close()
    [raw] = sink.raw

    assert dkim.verify(raw, dnsfunc=dkim_key.dns)
    added = raw.replace(b"\r\n\r\n", b"\r\nList-Id: <spoofed.example.net>\r\n\r\n", 1)
    assert not dkim.verify(added, dnsfunc=dkim_key.dns)


def test_the_maildir_copy_carries_a_dkim_signature_that_verifies(dkim_key: DkimKey, tmp_path: Path) -> None:
    signer = DkimSigner(dkim_key.pem, selector="digest", domain="example.org")
    mailer = mailer_for(f"maildir://{tmp_path}", signer=signer)

    mailer.send(digest_message())

    [stored] = (tmp_path / "new").iterdir()
    assert dkim.verify(stored.read_bytes(), dnsfunc=dkim_key.dns)


def test_the_runtime_signs_with_the_key_the_settings_name(
    dkim_key: DkimKey, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_FROM", SENDER)
    monkeypatch.setenv("DIGEST_DKIM_KEY", str(dkim_key.path))
    settings = load_settings()

    runtime = Runtime(settings)
    runtime.mailer.send(digest_message())
    runtime.close()

    assert (settings.dkim_selector, settings.dkim_domain) == ("digest", "example.org")
    [stored] = (clean_env / "outbox" / "new").iterdir()
    assert dkim.verify(stored.read_bytes(), dnsfunc=dkim_key.dns)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [(None, "cannot read"), (b"not a key\n", "is not an unencrypted PEM RSA private key")],
)
def test_an_unusable_dkim_key_is_refused_at_load_in_one_line_naming_the_variable(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None, complaint: str
) -> None:
    path = tmp_path / "dkim.pem"
    if content is not None:
        path.write_bytes(content)
    monkeypatch.setenv("DIGEST_DKIM_KEY", str(path))

    with pytest.raises(ConfigError) as refused:
        load_settings()

    message = str(refused.value)
    assert message.startswith("DIGEST_DKIM_KEY: ") and complaint in message and "\n" not in message


def test_a_dkim_selector_that_is_not_a_dns_name_is_refused_at_load(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_DKIM_SELECTOR", "my selector")

    with pytest.raises(ConfigError) as refused:
        load_settings()

    assert str(refused.value).startswith("DIGEST_DKIM_SELECTOR: 'my selector' is not a DNS name")


def test_a_ca_file_without_certificates_is_refused_at_load_naming_the_variable(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ca.pem").write_text("no certificate here\n")
    monkeypatch.setenv("DIGEST_SMTP_CA_FILE", str(tmp_path / "ca.pem"))

    with pytest.raises(ConfigError) as refused:
        load_settings()

    assert str(refused.value).startswith("DIGEST_SMTP_CA_FILE: ")


def test_mail_settings_default_to_no_signing_no_pacing_and_a_30_second_timeout(clean_env: Path) -> None:
    settings = load_settings()

    assert settings.dkim_key == "" and settings.dkim_selector == "digest"
    assert settings.dkim_domain == "localhost"
    assert settings.send_rate == 0 and settings.smtp_timeout == 30 and settings.smtp_ca_file == ""


# --- Pacing ---------------------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when the code under test sleeps or the test says so."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.now += seconds


class Recorder:
    """A mailer that remembers what it was handed and when."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, str]] = []
        self.closed = False

    def send(self, message: EmailMessage) -> None:
        self.sent.append((round(self.clock.now, 9), str(message["Message-ID"])))

    def close(self) -> None:
        self.closed = True


def test_paced_sends_are_spaced_by_the_inverse_of_the_rate() -> None:
    clock = FakeClock()
    inner = Recorder(clock)
    mailer = PacedMailer(inner, 4.0, clock=clock, sleep=clock.sleep)

    for number in (1, 2, 3):
        mailer.send(digest_message(number))

    assert [when for when, _id in inner.sent] == [100.0, 100.25, 100.5]
    assert clock.sleeps == [0.25, 0.25]


def test_an_idle_pause_earns_no_burst_beyond_one_message() -> None:
    clock = FakeClock()
    inner = Recorder(clock)
    mailer = PacedMailer(inner, 2.0, clock=clock, sleep=clock.sleep)
    mailer.send(digest_message(1))

    clock.now += 60
    mailer.send(digest_message(2))
    mailer.send(digest_message(3))
    mailer.close()

    assert [when for when, _id in inner.sent] == [100.0, 160.0, 160.5]
    assert inner.closed


def test_only_smtp_is_paced_and_only_when_a_rate_is_set(tmp_path: Path) -> None:
    paced = mailer_for("smtp://127.0.0.1:2525", send_rate=10)
    unpaced = mailer_for("smtp://127.0.0.1:2525")
    maildir = mailer_for(f"maildir://{tmp_path}", send_rate=10)

    assert isinstance(paced, PacedMailer) and isinstance(paced.inner, SmtpMailer)
    assert paced.interval == pytest.approx(0.1)
    assert isinstance(unpaced, SmtpMailer)
    assert isinstance(maildir, MaildirMailer)


# --- Header safety --------------------------------------------------------------------------------------


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r"])
def test_a_line_break_in_the_subject_cannot_add_a_header_to_the_bytes_sent(breaker: str) -> None:
    with smtp_sink() as sink:
        mailer = mailer_for(sink.url)
        with pytest.raises(ValueError, match="linefeed or carriage return"):
            mailer.send(digest_message(subject=f"Your digest{breaker}Bcc: x@evil.example"))
        mailer.send(digest_message(subject="Your digest"))
        mailer.close()

    [raw] = sink.raw
    assert b"evil" not in raw
    assert not re.search(rb"^Bcc:", raw, re.MULTILINE | re.IGNORECASE)
