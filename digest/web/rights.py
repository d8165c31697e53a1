"""The people's rights on the manage page (issue 14; GDPR art. 15 and 17): download my data, erase it.

``POST /manage/{token}/export`` answers the export (``deliver.rights``) as a JSON download. ``GET
/manage/{token}/erase`` is the second confirmation: a page saying what goes and what stays, whose form
POSTs to the same path (CSRF-bound to the link, as every manage form); only that POST erases. Every page
here is a token page: ``Cache-Control: no-store`` and no referrer (``edge.SecurityHeaders``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from digest.db import transaction
from digest.deliver import rights, suppression
from digest.errors import NotFoundError
from digest.models import Subscriber
from digest.ops import audit
from digest.tokens import MANAGE
from digest.web import security
from digest.web.context import Web
from digest.web.forms import Fields, form_reader


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    secret = web.settings.secret_key
    manage_form = Depends(form_reader(secret, "manage"))
    erase_form = Depends(form_reader(secret, "erase"))

    def address_of(token: str) -> str:
        subscriber_id = security.token_id(secret, MANAGE, token, "u")
        with transaction(web.rt.sessions) as session:
            subscriber = session.get(Subscriber, subscriber_id)
            if subscriber is None or subscriber.state == rights.ERASED:
                raise NotFoundError("the data of this link was erased: nothing is stored under it")
            return subscriber.email

    @routes.post("/manage/{token}/export")
    def download(token: str, fields: Fields = manage_form) -> Response:
        address = address_of(token)
        with transaction(web.rt.sessions) as session:
            data = rights.export(session, secret, address)
        headers = {"Content-Disposition": 'attachment; filename="my-digest-data.json"'}
        return Response(rights.as_json(data), media_type="application/json", headers=headers)

    @routes.get("/manage/{token}/erase", response_class=HTMLResponse)
    def confirm(request: Request, token: str) -> HTMLResponse:
        return web.page(request, "erase.html", token=token, email=address_of(token))

    @routes.post("/manage/{token}/erase", response_class=HTMLResponse)
    def erase(request: Request, token: str, fields: Fields = erase_form) -> HTMLResponse:
        address, now = address_of(token), web.clock()
        with transaction(web.rt.sessions) as session:
            counts = rights.erase(session, secret, address, "manage page", now)
            key = {"address_hash": suppression.address_hash(secret, address)}
            audit.record(session, "subscriber", "subscribers.erase", key, now, str(counts))
        message = (
            "Everything we stored about your address is erased. We keep only a one-way key of it on our "
            "do-not-mail list, so it is not added again by mistake; signing up again lifts that."
        )
        return web.page(request, "message.html", title="Erased", message=message)

    return routes
