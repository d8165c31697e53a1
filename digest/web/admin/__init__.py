"""The admin web under /admin, behind ``DIGEST_ADMIN_TOKEN`` (issue 7, "Admin web").

    /admin/login, /admin/logout        the token in a form → a signed session cookie; logout drops it
    /admin                             overview: deliveries by status, failing feeds, latest audit entries
    /admin/deliveries                  filters (status, subscriber, skill, period), 50 a page, older by id
    /admin/deliveries/{id}             subscriber, window, history, items and why, replays, the digest
    /admin/deliveries/{id}/copy        POST: send a copy to an address
    /admin/deliveries/{id}/resend      GET asks to confirm; POST: send it again to its subscriber
    /admin/feeds                       failing feeds first, the error in words
    /admin/schedules                   run-time cadences; POST /admin/schedules/{name} changes one
    /admin/subscribers?q=              search by address: subscriptions, states, bounces
    /admin/coverage                    followed skills, worst covered first (coverage.py, issue 16)
    /admin/sending, /admin/audit, feed actions     the switches and the audit log (operate.py, issue 17)

Every page but the login carries the health banner (banner.py): what is wrong first, then beat, workers,
queues, sending, overdue feeds and the last hour's failures.

With no token set, /admin does not exist (404, like any unknown path). Otherwise each request carries the
session cookie made at login or ``Authorization: Bearer <token>`` (scripts). Tokens are compared with
``hmac.compare_digest``, so the time taken does not tell how much of a guess was right. The cookie is
HttpOnly, SameSite=Strict, lasts 12 hours and holds a fingerprint of the token: changing the token ends
every session. Forms carry the app's CSRF token (security.py) as well, because SameSite is the browser's
promise and the token is ours; bearer requests need none, as no browser adds that header on its own.

Every action is written to the audit log (``digest audit list``) with actor ``web:admin``: replays and
cadence changes by the functions that make them, refusals and logins here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, or_, select

from digest import health
from digest.db import transaction
from digest.deliver import compare, digests, history, replay, subscribers, suppression
from digest.deliver.signup import TooManyRequestsError
from digest.errors import DigestError, ErasedError, InvalidInputError
from digest.ingest import catalog
from digest.models import Delivery, Source, Subscriber
from digest.ops import audit, schedules
from digest.ops.ratelimit import retry_after
from digest.records import relative
from digest.web import security
from digest.web.admin import coverage, operate, views
from digest.web.admin.auth import (
    COOKIE,
    SESSION_MAX_AGE,
    Admin,
    end_sessions,
    local_path,
    plain_form,
    session_cookie,
    session_generation,
    token_matches,
    valid_session,
)
from digest.web.admin.banner import Banner
from digest.web.admin.views import PAGE_SIZE, STATUSES, DeliveryFilter
from digest.web.context import Web
from digest.web.forms import Fields, RowId, form_reader

ACTOR = "web:admin"
LOGIN_LIMIT, LOGIN_WINDOW = 10, timedelta(minutes=15)
# Bearer requests a client address may make in LOGIN_WINDOW, right or wrong: plenty for a script.
BEARER_LIMIT = 600


def router(web: Web) -> APIRouter:
    """The routes of this module: a 404 everywhere when no admin token is set."""
    settings = web.settings
    secret, secure = settings.secret_key, settings.base_url.startswith("https:")

    def enabled() -> None:
        if not settings.admin_token:
            raise HTTPException(404)

    def admin(request: Request) -> Admin:
        enabled()
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, given = header.partition(" ")
            now, ip = web.clock(), security.client_ip(request)
            # Counted before comparing, as the login form is: a script's calls fit, a guesser's do not.
            if web.rt.signups.limiter.hit(f"admin-bearer:{ip}", LOGIN_WINDOW, now) > BEARER_LIMIT:
                raise TooManyRequestsError(
                    "too many admin requests: please try again later",
                    retry_after=retry_after(LOGIN_WINDOW, now),
                )
            if scheme.lower() == "bearer" and token_matches(given.strip(), settings.admin_token):
                return Admin("bearer")
            record("admin.bearer", {"ip": ip}, "refused")
            raise HTTPException(401, "not authorised", headers={"WWW-Authenticate": "Bearer"})
        with transaction(web.rt.sessions) as session:
            generation = session_generation(session)
        if valid_session(secret, settings.admin_token, request.cookies.get(COOKIE, ""), generation):
            return Admin("cookie")
        if request.method == "GET":
            # A person's browser: to the login form, and back here afterwards.
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, headers={"Location": f"/admin/login?next={quote(target)}"})
        raise HTTPException(401, "not authorised", headers={"WWW-Authenticate": "Bearer"})

    authorised = Depends(admin)

    async def admin_form(request: Request, who: Admin = authorised) -> Fields:
        if who.via == "cookie":
            return Fields(await security.read_form(request, secret, "admin"))
        return Fields(await plain_form(request))

    login_form = Depends(form_reader(secret, "admin-login"))
    fields_of = Depends(admin_form)
    routes = APIRouter(dependencies=[Depends(enabled)])
    private = APIRouter(dependencies=[authorised])

    banner = Banner(web)

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        if not context.get("anonymous"):
            context |= {"health": banner.status(), "now": web.clock()}
        response = web.page(request, f"admin/{name}", status, when=views.when, ago=relative, **context)
        # Admin pages hold personal data: never cached, never framed by another site.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def record(action: str, arguments: Mapping[str, Any], result: str) -> None:
        with transaction(web.rt.sessions) as session:
            audit.record(session, ACTOR, action, arguments, web.clock(), result)

    @routes.get("/admin/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/admin") -> HTMLResponse:
        return page(request, "login.html", next=local_path(next), error="", anonymous=True)

    @routes.post("/admin/login")
    def login(request: Request, fields: Fields = login_form) -> Response:
        now, ip = web.clock(), security.client_ip(request)
        # Counted before comparing, so a guesser learns nothing more once over the limit.
        if web.rt.signups.limiter.hit(f"admin-login:{ip}", LOGIN_WINDOW, now) > LOGIN_LIMIT:
            raise TooManyRequestsError(
                "too many login attempts: please try again in 15 minutes",
                retry_after=retry_after(LOGIN_WINDOW, now),
            )
        if not token_matches(fields.first("token"), settings.admin_token):
            record("admin.login", {"ip": ip}, "refused")
            return page(
                request,
                "login.html",
                401,
                next=local_path(fields.first("next")),
                error="wrong token",
                anonymous=True,
            )
        record("admin.login", {"ip": ip}, "ok")
        with transaction(web.rt.sessions) as session:
            generation = session_generation(session)
        response = RedirectResponse(local_path(fields.first("next")), status_code=303)
        response.set_cookie(
            COOKIE,
            session_cookie(secret, settings.admin_token, generation),
            max_age=SESSION_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/admin",
        )
        return response

    @private.post("/admin/logout")
    def logout(_: Fields = fields_of) -> Response:
        # Server-side: a copy of the cookie taken before this is refused too (issue 14, finding 10).
        with transaction(web.rt.sessions) as session:
            end_sessions(session, web.clock())
        record("admin.logout", {}, "ok")
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict", secure=secure)
        return response

    @private.get("/admin", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        with transaction(web.rt.sessions) as session:
            deliveries = dict(session.execute(views.count_by(Delivery.status)).tuples().all())
            people = suppression.count_by_state(session)
            failing = session.scalar(
                select(func.count())
                .select_from(Source)
                .where(or_(Source.consecutive_failures > 0, Source.state != "active"))
            )
            entries = [views.audit_row(entry) for entry in audit.entries(session, limit=15)]
        return page(
            request, "overview.html", deliveries=deliveries, people=people, failing=failing, entries=entries
        )

    @private.get("/admin/deliveries", response_class=HTMLResponse)
    def deliveries(request: Request) -> HTMLResponse:
        wanted, listing, error = DeliveryFilter(), history.DeliveryPage((), None), ""
        try:
            wanted = DeliveryFilter.read(request.query_params)
            with transaction(web.rt.sessions) as session:
                listing = views.deliveries(session, wanted)
        except DigestError as exc:
            error = str(exc)
        return page(
            request,
            "deliveries.html",
            400 if error else 200,
            f=wanted,
            listing=listing,
            statuses=STATUSES,
            error=error,
        )

    def show(request: Request, delivery_id: int, status: int = 200, error: str = "") -> HTMLResponse:
        with transaction(web.rt.sessions) as session:
            found = history.view(session, delivery_id)
        rendered: dict[str, Any] = {}
        if found.body_hash is not None:
            try:
                done = digests.render_delivery(web.rt.sessions, delivery_id, web.rt.composer, web.rt.delivery)
                sent = compare.sent_copy(web.rt.mailer, found.message_id)
                checked = compare.compare(
                    done.email, found.body_hash, done.sent_base_url, web.settings.base_url, sent
                )
                rendered = {"html": done.email.html, "check": checked}
            except DigestError as exc:
                rendered = {"error": str(exc)}
        replayed = request.query_params.get("replayed", "")
        note = next((r for r in found.replays if str(r.id) == replayed), None)
        return page(
            request, "delivery.html", status, delivery=found, rendered=rendered, note=note, error=error
        )

    @private.get("/admin/deliveries/{delivery_id}", response_class=HTMLResponse)
    def delivery(request: Request, delivery_id: RowId) -> HTMLResponse:
        return show(request, delivery_id)

    @private.post("/admin/deliveries/{delivery_id}/copy")
    def copy_to(request: Request, delivery_id: RowId, fields: Fields = fields_of) -> Response:
        address = fields.first("address").strip()
        return act(
            request,
            delivery_id,
            ("replay.copy", {"delivery": delivery_id, "to": address}),
            lambda: replay.send_copy(web.rt, delivery_id, address, ACTOR, web.clock()),
        )

    def confirm_resend(request: Request, delivery_id: int, status: int = 200) -> HTMLResponse:
        with transaction(web.rt.sessions) as session:
            found = history.view(session, delivery_id)
        earlier = [r for r in found.replays if r.kind == replay.RESEND]
        return page(request, "resend.html", status, delivery=found, earlier=earlier)

    @private.get("/admin/deliveries/{delivery_id}/resend", response_class=HTMLResponse)
    def resend_page(request: Request, delivery_id: RowId) -> HTMLResponse:
        return confirm_resend(request, delivery_id)

    @private.post("/admin/deliveries/{delivery_id}/resend")
    def send_again(request: Request, delivery_id: RowId, fields: Fields = fields_of) -> Response:
        # A resend reaches a person's inbox: only from the confirmation page, which says whether it was
        # resent before, so confirming it sends it once more (issue 17).
        if fields.first("confirmed") != "yes":
            return confirm_resend(request, delivery_id, 400)
        return act(
            request,
            delivery_id,
            ("replay.resend", {"delivery": delivery_id, "confirmed": True}),
            lambda: replay.resend(web.rt, delivery_id, ACTOR, web.clock(), force=True),
        )

    def act(
        request: Request,
        delivery_id: int,
        audited: tuple[str, dict[str, Any]],
        send: Callable[[], replay.ReplayOutcome],
    ) -> Response:
        # The replay module audits what it sends; a refusal never reaches it, so it is audited here.
        try:
            outcome = send()
        except ErasedError as exc:
            # Issue 14: the subscriber was erased; 410 Gone says so, as a status rather than a failure.
            record(*audited, "erased")
            return show(request, delivery_id, 410, error=str(exc))
        except DigestError as exc:
            record(*audited, f"refused: {exc}")
            return show(request, delivery_id, 400, error=str(exc))
        # POST/redirect/GET: reloading the page never sends it again.
        return RedirectResponse(
            f"/admin/deliveries/{delivery_id}?replayed={outcome.replay_id}", status_code=303
        )

    @private.get("/admin/feeds", response_class=HTMLResponse)
    def feeds(request: Request, saved: str = "", error: str = "") -> HTMLResponse:
        with transaction(web.rt.sessions) as session:
            infos = catalog.list_feeds(session)
            # A feed long overdue is in trouble too, though its last fetch worked (issue 17).
            late = {feed.id: feed.error for feed in health.overdue_feeds(session, web.clock(), len(infos))}

        def trouble(info: catalog.FeedInfo) -> bool:
            return catalog.failing(info) or info.id in late

        infos.sort(key=lambda f: (not trouble(f), -f.consecutive_failures, f.name.lower()))
        rows = [(info, trouble(info), catalog.in_words(info) or late.get(info.id, "")) for info in infos]
        return page(request, "feeds.html", rows=rows, saved=saved[:300], error=error[:300])

    def cadences(request: Request, status: int = 200, error: str = "", saved: str = "") -> HTMLResponse:
        with transaction(web.rt.sessions) as session:
            rows = schedules.list_schedules(session)
        return page(request, "schedules.html", status, rows=rows, error=error, saved=saved)

    @private.get("/admin/schedules", response_class=HTMLResponse)
    def schedules_page(request: Request, saved: str = "") -> HTMLResponse:
        return cadences(request, saved=saved)

    @private.post("/admin/schedules/{name}")
    def set_schedule(request: Request, name: str, fields: Fields = fields_of) -> Response:
        value, now = fields.first("value").strip(), web.clock()
        try:
            # set_schedule writes its own audit entry (cadence.set) in this transaction.
            with transaction(web.rt.sessions) as session:
                schedules.set_schedule(session, name, value, ACTOR, now)
        except InvalidInputError as exc:
            record("cadence.set", {"name": name, "value": value}, f"refused: {exc}")
            return cadences(request, 400, error=str(exc))
        return RedirectResponse(f"/admin/schedules?saved={quote(name, safe='')}", status_code=303)

    @private.get("/admin/subscribers", response_class=HTMLResponse)
    def people(request: Request, q: str = "") -> HTMLResponse:
        text = q.strip().lower()
        with transaction(web.rt.sessions) as session:
            query = select(
                Subscriber.id, Subscriber.email, Subscriber.state, Subscriber.bounces, Subscriber.confirmed_at
            )
            if text:
                query = query.where(Subscriber.email.contains(text, autoescape=True))
            found = session.execute(query.order_by(Subscriber.email).limit(PAGE_SIZE + 1)).all()
            rows = [(who, subscribers.subscriptions_of(session, who.id)) for who in found[:PAGE_SIZE]]
            # The person's state, not the stored one: whoever has no subscription left is not "active".
            states = suppression.person_states(session, [who.id for who in found[:PAGE_SIZE]])
        now = web.clock()
        # The next digest is the end of the window its next dispatch opens (``cadence.window``).
        next_digest = {s.id: subscribers.next_window(s, now)[1] for _, infos in rows for s in infos}
        return page(
            request,
            "subscribers.html",
            q=q,
            rows=rows,
            states=states,
            next_digest=next_digest,
            more=len(found) > PAGE_SIZE,
        )

    coverage.add_routes(private, page, web)
    operate.add_routes(private, page, web, record, banner, fields_of)
    routes.include_router(private)
    return routes
