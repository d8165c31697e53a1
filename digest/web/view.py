"""``/view/{token}``: a sent digest as a web page, the "view in browser" link of every digest (issue 17).

The token is signed for this purpose alone (``tokens.VIEW``) and names one delivery with a deadline: the
window's end plus ``render.VIEW_PERIOD``. The page is the delivery rendered again from its manifest with
the templates of the day it went out (``replay.as_sent``): the HTML that was sent, byte for byte. Like every
token page it is neither cached nor passed on in a Referer.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from digest.deliver import replay
from digest.errors import InvalidInputError, LinkExpiredError
from digest.tokens import VIEW, read_until
from digest.web.context import Web
from digest.web.edge import PREVIEW_CSP


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()

    @routes.get("/view/{token}", response_class=HTMLResponse)
    def view(token: str) -> HTMLResponse:
        try:
            payload, _ = read_until(web.settings.secret_key, VIEW, token, web.clock())
        except LinkExpiredError as exc:
            raise LinkExpiredError(
                f"this link to view the email in a browser expired on {exc.until:%-d %B %Y}; "
                "the email itself still shows everything",
                exc.until,
            ) from None
        delivery_id = payload.get("d")
        if not isinstance(delivery_id, int) or isinstance(delivery_id, bool):
            raise InvalidInputError("this link is not valid")
        html = replay.as_sent(web.rt, delivery_id).email.html
        # Emails carry inline styles (css-inline): the admin's preview policy, which still runs no script.
        headers = {
            "Content-Security-Policy": PREVIEW_CSP,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Robots-Tag": "noindex",
        }
        return HTMLResponse(html, headers=headers)

    return routes
