"""Email providers' bounce and complaint webhooks (issue 19), under /webhooks/.

    POST /webhooks/mailgun    DIGEST_MAILGUN_SIGNING_KEY      HMAC-SHA256 of timestamp + token
    POST /webhooks/postmark   DIGEST_POSTMARK_WEBHOOK_AUTH    basic auth (the URL's credentials)
    POST /webhooks/sendgrid   DIGEST_SENDGRID_PUBLIC_KEY      ECDSA over timestamp + body
    POST /webhooks/ses        DIGEST_SNS_TOPICS               SNS message signature (certificate from SNS)

A provider not configured answers 404; a signature or credentials that do not verify 403 (401 asking for
basic auth for Postmark) and change nothing; a malformed body 400; never a 500. A verified body is applied
like a report from the bounce mailbox (``deliver.bounces``) and answered 200 with what it did.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from digest.deliver import bounces
from digest.deliver.bounces import providers, sns
from digest.errors import InvalidInputError, SignatureError
from digest.web.context import Web

# SES notifications are at most 256 KiB; Mailgun and SendGrid batches are smaller.
MAX_BODY = 1024 * 1024
CERTIFICATE_TIMEOUT = 10.0
MAX_CERTIFICATE = 64 * 1024


class _Certificates:
    """SNS signing certificates by URL, fetched once per process (the URL is checked before, ``sns``)."""

    def __init__(self) -> None:
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> bytes:
        with self._lock:
            if url not in self._cache:
                with urllib.request.urlopen(url, timeout=CERTIFICATE_TIMEOUT) as answer:  # noqa: S310 (https, checked)
                    self._cache[url] = answer.read(MAX_CERTIFICATE)
            return self._cache[url]


def router(web: Web, certificates: sns.CertificateFetcher | None = None) -> APIRouter:
    """The webhook routes; ``certificates`` fetches SNS signing certificates (tests pass a local one)."""
    routes = APIRouter(prefix="/webhooks", tags=["webhooks"])
    fetch = certificates or _Certificates()
    settings, secret = web.settings, web.settings.secret_key

    async def handle(
        request: Request, configured: str, verify: Callable[[bytes], list[bounces.Report]]
    ) -> JSONResponse:
        if not configured:
            return _answer(404, "this webhook is not configured")
        body = await _body(request)
        if body is None:
            return _answer(413, f"the body is larger than {MAX_BODY // 1024} KiB")
        try:
            reports = verify(body)
        except SignatureError as exc:
            return _answer(403, f"signature refused: {exc}")
        except InvalidInputError as exc:
            return _answer(400, str(exc))
        applied = bounces.apply_reports(web.rt.sessions, reports, secret, web.clock())
        return JSONResponse({"reports": [report.as_json() for report in applied]})

    @routes.post("/mailgun")
    async def mailgun(request: Request) -> JSONResponse:
        key = settings.mailgun_signing_key
        return await handle(request, key, lambda body: providers.mailgun(body, key, secret, web.clock()))

    @routes.post("/postmark")
    async def postmark(request: Request) -> JSONResponse:
        credentials, given = settings.postmark_webhook_auth, request.headers.get("authorization")
        answer = await handle(
            request, credentials, lambda body: providers.postmark(body, given, credentials, secret)
        )
        if answer.status_code == 403:
            # RFC 9110 11.6.1: a request without the right credentials is asked for them.
            answer.status_code = 401
            answer.headers["WWW-Authenticate"] = 'Basic realm="digest webhooks"'
        return answer

    @routes.post("/sendgrid")
    async def sendgrid(request: Request) -> JSONResponse:
        key, headers = settings.sendgrid_public_key, request.headers
        signature = headers.get("x-twilio-email-event-webhook-signature")
        timestamp = headers.get("x-twilio-email-event-webhook-timestamp")
        return await handle(
            request,
            key,
            lambda body: providers.sendgrid(body, signature, timestamp, key, secret, web.clock()),
        )

    @routes.post("/ses")
    async def ses(request: Request) -> JSONResponse:
        topics = frozenset(topic.strip() for topic in settings.sns_topics.split(",") if topic.strip())

        def verify(body: bytes) -> list[bounces.Report]:
            message = sns.verify(body, topics, fetch, web.clock())
            if message.type != "Notification":
                # Confirming a subscription fetches its URL: ops do it by hand (docs/design.md, "Bounces").
                return []
            return providers.ses(message.notification(), secret)

        return await handle(request, settings.sns_topics, verify)

    return routes


async def _body(request: Request) -> bytes | None:
    """The request body, or None past ``MAX_BODY``: read as it streams in, never more than that held."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)
