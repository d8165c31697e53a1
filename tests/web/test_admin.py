"""The admin web on loopback: nothing without the token, pages with real deliveries, audited actions.

Deliveries are made the way test_digests.py makes them: items published on a loopback feed server,
crawled and tagged, then dispatched and sent to the Maildir outbox at a pinned time.
"""

from __future__ import annotations

import hmac
import html
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from digest.config import Settings, load_settings
from digest.db import transaction
from digest.deliver import digests
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.errors import ConfigError
from digest.ingest import crawl
from digest.models import AuditEntry, Delivery, Replay, Source
from digest.ops import audit
from digest.runtime import Runtime
from digest.web import create_app
from digest.web.admin.auth import COOKIE, session_cookie
from tests.support import FeedServer, Route, feed_server, rss
from tests.web.conftest import CLOCK, TOKEN, log_in
from tests.web_support import csrf, outbox, serve

BERLIN_DAILY = Schedule("daily", 8, 0, "Europe/Berlin")
SENT_AT = datetime(2026, 11, 16, 7, 0, 30, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def ingest(rt: Runtime, server: FeedServer, when: datetime, *items: tuple[str, str]) -> None:
    """Publish ``items`` on the loopback feed and crawl and tag them at ``when`` (test_digests.Ingest)."""
    server.routes["/feed"] = Route(
        rss(*((f"/feed-{n}", title, body) for n, (title, body) in enumerate(items)), published=None)
    )
    with transaction(rt.sessions) as session:
        source = Source(
            url=server.url("/feed"), name="Loopback news", kind="news", next_fetch_at=when, created_at=when
        )
        session.add(source)
        session.flush()
        source_id = source.id
    outcome = crawl.refresh_and_tag(rt.sessions, rt.fetcher, rt.matchers, source_id, when, random.Random(1))
    assert outcome.status == "ok", outcome.error


def follow(rt: Runtime, email: str, when: datetime, *skills: str) -> int:
    with transaction(rt.sessions) as session:
        return subscribe(session, email, skills, BERLIN_DAILY, when, confirmed=True).id


def send_all(rt: Runtime, now: datetime) -> dict[str, int]:
    """Dispatch at ``now`` and send what it opened; the delivery id of each address."""
    ids = [delivery_id for batch in digests.dispatch_due(rt.sessions, now) for delivery_id in batch]
    for delivery_id in ids:
        digests.send_delivery(
            rt.sessions, delivery_id, mailer=rt.mailer, composer=rt.composer, config=rt.delivery, now=now
        )
    with transaction(rt.sessions) as session:
        rows = session.execute(select(Delivery.id, Delivery.status).where(Delivery.id.in_(ids))).all()
    return {status: delivery_id for delivery_id, status in rows}


@pytest.fixture
def sent(rt: Runtime, server: FeedServer) -> dict[str, int]:
    """A sent delivery for reader@example.com (Python) and a skipped one for other@example.org."""
    follow(rt, "reader@example.com", at("2026-11-15T10:00"), "Python")
    follow(rt, "other@example.org", at("2026-11-15T10:00"), "Kubernetes")
    ingest(rt, server, at("2026-11-15T12:00"), ("Python 3.13 is out", "Faster startup <b>&</b> more."))
    return send_all(rt, SENT_AT)


def admin_routes(settings: Settings) -> list[tuple[str, str]]:
    """Every (method, path) of the admin router, path parameters filled with plausible values.

    Read from the OpenAPI description, which lists every route however routers are nested.
    """
    found = []
    for path, methods in create_app(settings).openapi()["paths"].items():
        if path.startswith("/admin"):
            filled = path.replace("{delivery_id}", "1").replace("{name}", "crawl-tick")
            found += [(method.upper(), filled) for method in sorted(methods)]
    return found


def audit_entries(rt: Runtime, action: str) -> list[AuditEntry]:
    with transaction(rt.sessions) as session:
        entries = audit.entries(session, action=action)
        session.expunge_all()
    return entries


def test_every_admin_route_refuses_a_request_without_credentials(
    app_client: httpx.Client, admin_settings: Settings
) -> None:
    routes = [(m, p) for m, p in admin_routes(admin_settings) if p != "/admin/login"]
    assert len(routes) >= 9

    for method, path in routes:
        answer = app_client.request(method, path)

        redirected = answer.status_code == 303 and answer.headers["location"].startswith("/admin/login")
        assert answer.status_code == 401 or redirected, (method, path, answer.status_code)
        for bad in ("Bearer wrong-token-of-some-length", "Basic " + TOKEN, TOKEN):
            assert app_client.request(method, path, headers={"Authorization": bad}).status_code == 401


def test_there_is_no_admin_without_a_token(settings: Settings, rt: Runtime) -> None:
    with serve(create_app(settings, clock=lambda: CLOCK)) as http:
        for method, path in admin_routes(settings):
            assert http.request(method, path).status_code == 404, (method, path)
        assert http.get("/admin", headers={"Authorization": "Bearer x"}).status_code == 404


@pytest.mark.parametrize(
    "wrong", ["", "x", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "é" * len(TOKEN), "\u00a0" + TOKEN[1:]]
)
def test_a_wrong_token_just_fails_whatever_its_length_or_alphabet(
    app_client: httpx.Client, wrong: str
) -> None:
    answer = log_in(app_client, wrong)

    assert answer.status_code == 401 and "wrong token" in answer.text
    assert COOKIE not in app_client.cookies
    assert app_client.get("/admin").status_code == 303
    bearer = app_client.get("/admin", headers={"Authorization": f"Bearer {wrong}".strip().encode()})
    assert bearer.status_code == 401


@pytest.mark.parametrize(
    "token", ["too-short", "x" * 40, "é" * 40, "tab\tinside-a-long-token-0123456789", "a" * 16]
)
def test_an_unusable_admin_token_stops_start_up_with_one_line(tmp_path: Path, token: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(home=tmp_path, admin_token=token)

    assert str(refused.value).startswith("DIGEST_ADMIN_TOKEN: ") and "at least 32" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_token_is_compared_in_constant_time(
    app_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)

    app_client.get("/admin", headers={"Authorization": "Bearer a-guess"})
    log_in(app_client, "another-guess")

    assert (b"a-guess", TOKEN.encode()) in compared
    assert (b"another-guess", TOKEN.encode()) in compared


def test_a_bearer_token_opens_every_page_without_a_cookie(
    app_client: httpx.Client, sent: dict[str, int]
) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/admin", "/admin/deliveries", f"/admin/deliveries/{sent['sent']}", "/admin/feeds"):
        assert app_client.get(path, headers=bearer).status_code == 200, path
    assert app_client.get("/admin/schedules", headers=bearer).status_code == 200
    assert app_client.get("/admin/subscribers?q=reader", headers=bearer).status_code == 200


def test_logging_in_sets_a_strict_http_only_expiring_cookie_for_admin_pages(
    app_client: httpx.Client, rt: Runtime
) -> None:
    answer = log_in(app_client, next_page="/admin/feeds")

    assert answer.status_code == 303 and answer.headers["location"] == "/admin/feeds"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE + "="))
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "max-age=43200", "path=/admin"} <= attributes
    assert app_client.get("/admin/feeds").status_code == 200
    [entry] = audit_entries(rt, "admin.login")
    assert entry.result == "ok" and entry.actor == "web:admin" and entry.arguments == {"ip": "127.0.0.1"}


def test_the_login_form_returns_only_to_admin_pages(app_client: httpx.Client) -> None:
    for target in ("https://evil.example/", "//evil.example/admin", "/admin//evil.example", "/manage/x"):
        answer = log_in(app_client, next_page=target)
        assert answer.headers["location"] == "/admin", target


def test_a_session_made_for_an_older_token_is_refused(
    app_client: httpx.Client, admin_settings: Settings
) -> None:
    old = session_cookie(admin_settings.secret_key, "the-token-before-rotation", 0)
    app_client.cookies.set(COOKIE, old, domain="127.0.0.1", path="/admin")

    assert app_client.get("/admin").status_code == 303


def test_logging_out_ends_the_session(client: httpx.Client) -> None:
    page = client.get("/admin")

    assert client.post("/admin/logout", data={"csrf": csrf(page.text)}).status_code == 303
    assert client.get("/admin").status_code == 303


def test_failed_logins_are_limited_per_address(app_client: httpx.Client) -> None:
    answers = [log_in(app_client, "wrong-guess").status_code for _ in range(11)]

    assert answers[:10] == [401] * 10
    assert answers[10] == 429
    assert log_in(app_client).status_code == 429


def test_the_overview_counts_deliveries_and_feeds(client: httpx.Client, sent: dict[str, int]) -> None:
    page = client.get("/admin")

    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    assert re.search(r'status=sent">sent</a></th><td>1<', page.text)
    assert re.search(r'status=skipped">skipped</a></th><td>1<', page.text)


def test_the_deliveries_page_lists_real_deliveries(client: httpx.Client, sent: dict[str, int]) -> None:
    page = client.get("/admin/deliveries")

    assert page.status_code == 200
    assert "reader@example.com" in page.text and "other@example.org" in page.text
    assert f'href="/admin/deliveries/{sent["sent"]}"' in page.text


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("status=sent", {"reader@example.com"}),
        ("status=skipped", {"other@example.org"}),
        ("email=OTHER@", {"other@example.org"}),
        ("email=example", {"reader@example.com", "other@example.org"}),
        ("skill=python", {"reader@example.com"}),
        ("skill=k8s", {"other@example.org"}),
        ("from=2026-11-16&to=2026-11-16", {"reader@example.com", "other@example.org"}),
        ("from=2026-11-17", set()),
        ("to=2026-11-15", set()),
        ("status=sent&email=other", set()),
    ],
)
def test_the_delivery_filters_filter(
    client: httpx.Client, sent: dict[str, int], query: str, shown: set[str]
) -> None:
    page = client.get(f"/admin/deliveries?{query}")

    assert page.status_code == 200
    assert set(re.findall(r"<td>([\w.]+@[\w.]+)</td>", page.text)) == shown


def test_deliveries_come_fifty_a_page_with_a_link_to_older_ones(client: httpx.Client, rt: Runtime) -> None:
    subscription_id = follow(rt, "many@example.com", at("2026-11-01T10:00"), "Python")
    with transaction(rt.sessions) as session:
        for day in range(55):
            end = at("2026-09-01T07:00") + timedelta(days=day)
            session.add(
                Delivery(
                    subscription_id=subscription_id,
                    window_start=end - timedelta(days=1),
                    window_end=end,
                    status="skipped",
                    created_at=end,
                )
            )

    first = client.get("/admin/deliveries?email=many").text
    [older] = re.findall(r'<a rel="next" href="([^"]+)">', first)
    second = client.get(html.unescape(older)).text

    assert first.count("<td>many@example.com</td>") == 50 and 'rel="first"' not in first
    assert re.fullmatch(r"/admin/deliveries\?email=many&amp;before=\d+", older)
    assert second.count("<td>many@example.com</td>") == 5
    assert 'rel="first" href="/admin/deliveries?email=many"' in second and 'rel="next"' not in second
    assert "2026-09-01 07:00 UTC" in second and "2026-09-01 07:00 UTC" not in first


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=16/11/2026", "from: write a date"),
        ("status=lost", "status: choose"),
        ("skill=nosuchskill", "no skill"),
        ("before=ten", "before: a delivery id"),
        (f"before={2**64}", "before: a delivery id"),
    ],
)
def test_a_bad_filter_is_explained_on_the_page(
    client: httpx.Client, sent: dict[str, int], query: str, message: str
) -> None:
    page = client.get(f"/admin/deliveries?{query}")

    assert page.status_code == 400 and message in page.text


def test_the_delivery_page_shows_why_each_item_was_chosen_and_the_digest_itself(
    client: httpx.Client, sent: dict[str, int]
) -> None:
    page = client.get(f"/admin/deliveries/{sent['sent']}").text

    assert "reader@example.com" in page and "daily digest" in page
    assert "Python 3.13 is out" in page and "Loopback news" in page
    item = re.search(
        r"<td>1</td><td>.*?</td>\s*<td>Loopback news</td><td>Python</td><td>(.*?)</td><td>yes</td>", page
    )
    assert item and "Python" in item.group(1)
    assert "claimed" in page and ">sent<" in page
    assert "Identical to what was sent" in page
    srcdoc = re.search(r'<iframe class="digest"[^>]* sandbox srcdoc="([^"]*)"', page)
    assert srcdoc, "the digest is not in a sandboxed iframe"
    assert (
        "<" not in srcdoc.group(1) and "&lt;" in srcdoc.group(1) and "Python 3.13 is out" in srcdoc.group(1)
    )


def test_a_skipped_delivery_offers_nothing_to_replay(client: httpx.Client, sent: dict[str, int]) -> None:
    page = client.get(f"/admin/deliveries/{sent['skipped']}").text

    assert "nothing to show or replay" in page and "/resend" not in page


def test_an_unknown_delivery_is_not_found(client: httpx.Client) -> None:
    assert client.get("/admin/deliveries/999999").status_code == 404
    # Beyond any row id: refused as a path parameter (a readable 422), never looked up.
    beyond = client.get(f"/admin/deliveries/{2**64}")
    assert beyond.status_code == 422 and "id" in beyond.text


def test_a_copy_goes_to_the_address_shows_its_outcome_and_is_audited(
    client: httpx.Client, sent: dict[str, int], rt: Runtime, admin_settings: Settings
) -> None:
    path = f"/admin/deliveries/{sent['sent']}"
    before = len(outbox(admin_settings))

    answer = client.post(
        f"{path}/copy", data={"csrf": csrf(client.get(path).text), "address": "Boss@Example.com"}
    )

    assert answer.status_code == 303 and answer.headers["location"].startswith(f"{path}?replayed=")
    page = client.get(answer.headers["location"]).text
    assert "Copy to boss@example.com: sent" in page
    copies: list[EmailMessage] = outbox(admin_settings)[before:]
    assert [m["To"] for m in copies] == ["boss@example.com"]
    assert copies[0]["X-Digest-Replay-Of"]
    [entry] = audit_entries(rt, "replay.copy")
    assert entry.actor == "web:admin" and entry.arguments["delivery"] == sent["sent"]


def test_a_resend_is_sent_only_from_its_confirmation_page_which_says_it_was_resent_before(
    client: httpx.Client, sent: dict[str, int], rt: Runtime, admin_settings: Settings
) -> None:
    path = f"/admin/deliveries/{sent['sent']}"
    before = len(outbox(admin_settings))
    assert f'href="{path}/resend"' in client.get(path).text

    unconfirmed = client.post(f"{path}/resend", data={"csrf": csrf(client.get(path).text)})
    first_ask = client.get(f"{path}/resend")
    first = client.post(f"{path}/resend", data={"csrf": csrf(first_ask.text), "confirmed": "yes"})
    second_ask = client.get(f"{path}/resend")
    second = client.post(f"{path}/resend", data={"csrf": csrf(second_ask.text), "confirmed": "yes"})

    assert unconfirmed.status_code == 400 and "Resend delivery" in unconfirmed.text
    assert len(outbox(admin_settings)) == before + 2
    assert "reader@example.com" in first_ask.text and "resent before" not in first_ask.text
    assert "It was resent before" in second_ask.text
    assert first.status_code == 303 and second.status_code == 303
    # Web pages speak of confirming, never of the command line's flags (issue 17).
    assert "--force" not in unconfirmed.text + first_ask.text + second_ask.text
    assert len(audit_entries(rt, "replay.resend")) == 2
    with transaction(rt.sessions) as session:
        kinds = session.scalars(select(Replay.kind).where(Replay.delivery_id == sent["sent"])).all()
    assert kinds == ["resend", "resend"]


def test_a_form_without_its_csrf_token_is_refused(
    client: httpx.Client, sent: dict[str, int], rt: Runtime, admin_settings: Settings
) -> None:
    path = f"/admin/deliveries/{sent['sent']}"
    before = len(outbox(admin_settings))
    foreign = csrf(client.get("/admin/login").text)  # a token made for another form

    for data in ({"address": "boss@example.com"}, {"address": "boss@example.com", "csrf": foreign}):
        assert client.post(f"{path}/copy", data=data).status_code == 400
    assert client.post("/admin/schedules/crawl-tick", data={"value": "5m"}).status_code == 400

    assert len(outbox(admin_settings)) == before
    with transaction(rt.sessions) as session:
        assert session.scalars(select(Replay)).all() == []


def test_a_script_with_the_bearer_token_acts_without_a_csrf_token(
    app_client: httpx.Client, sent: dict[str, int], rt: Runtime
) -> None:
    answer = app_client.post(
        f"/admin/deliveries/{sent['sent']}/copy",
        data={"address": "ops@example.com"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert answer.status_code == 303
    assert [entry.arguments["to"] for entry in audit_entries(rt, "replay.copy")] == ["ops@example.com"]


def test_a_schedule_is_changed_through_its_form_and_audited(client: httpx.Client, rt: Runtime) -> None:
    page = client.get("/admin/schedules")
    assert "crawl-tick" in page.text and "dispatch-tick" in page.text

    saved = client.post("/admin/schedules/crawl-tick", data={"csrf": csrf(page.text), "value": "5m"})
    refused = client.post("/admin/schedules/crawl-tick", data={"csrf": csrf(page.text), "value": "often"})

    assert saved.status_code == 303
    assert "Saved crawl-tick: 5m" in client.get(saved.headers["location"]).text
    assert refused.status_code == 400 and "takes a duration" in refused.text
    results = [entry.result for entry in audit_entries(rt, "cadence.set")]
    assert results[1] == "5m" and (results[0] or "").startswith("refused:")


def test_failing_feeds_come_first_with_the_error_in_words(client: httpx.Client, rt: Runtime) -> None:
    with transaction(rt.sessions) as session:
        for name, failures, status, error in (
            ("Healthy blog", 0, 200, None),
            ("Gone news", 3, 404, "HTTP 404 from https://gone.example/feed"),
        ):
            session.add(
                Source(
                    url=f"https://{name.split()[0].lower()}.example/feed",
                    name=name,
                    kind="news",
                    next_fetch_at=CLOCK,
                    created_at=CLOCK,
                    consecutive_failures=failures,
                    last_http_status=status,
                    last_error=error,
                )
            )

    page = client.get("/admin/feeds").text

    assert page.index("Gone news") < page.index("Healthy blog")
    assert "1 failing or stopped" in client.get("/admin").text
    assert "the feed&#39;s address no longer exists — HTTP 404" in page
    assert re.search(r"<td>news</td><td>active</td>\s*<td>3</td>", page)


def test_subscribers_are_found_by_part_of_their_address(client: httpx.Client, sent: dict[str, int]) -> None:
    page = client.get("/admin/subscribers?q=READER").text

    assert "reader@example.com" in page and "other@example.org" not in page
    assert "Python" in page and "daily" in page and "active" in page
    assert "No subscriber whose address contains “nobody”" in client.get("/admin/subscribers?q=nobody").text


def test_audit_list_prints_entries_as_json(
    rt: Runtime, admin_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from digest.cli import app

    with transaction(rt.sessions) as session:
        audit.record(
            session, "web:admin", "replay.copy", {"delivery": 7, "to": "a@example.com"}, CLOCK, "sent"
        )
        audit.record(session, "cli:ops", "cadence.set", {"name": "crawl-tick", "value": "5m"}, CLOCK, "5m")
    for name, value in (("HOME", tmp_path / "home"), ("DATABASE_URL", admin_settings.database_url)):
        monkeypatch.setenv(f"DIGEST_{name}", str(value))
    monkeypatch.setenv("DIGEST_SECRET_KEY", admin_settings.secret_key)
    runner = CliRunner()

    everything = runner.invoke(app, ["audit", "list", "--json"])
    copies = runner.invoke(app, ["audit", "list", "--json", "--action", "replay.copy", "--limit", "5"])
    later = runner.invoke(app, ["audit", "list", "--json", "--since", "2026-11-16T09:31:00Z"])
    table = runner.invoke(app, ["audit", "list"])
    bad = runner.invoke(app, ["audit", "list", "--since", "yesterday"])

    assert everything.exit_code == 0, everything.output
    rows = json.loads(everything.stdout)
    assert [row["action"] for row in rows] == ["cadence.set", "replay.copy"]
    assert rows[1] == {
        "id": rows[1]["id"],
        "at": "2026-11-16T09:30:00Z",
        "actor": "web:admin",
        "action": "replay.copy",
        "arguments": {"delivery": 7, "to": "a@example.com"},
        "result": "sent",
    }
    assert [row["action"] for row in json.loads(copies.stdout)] == ["replay.copy"]
    assert json.loads(later.stdout) == []
    assert table.exit_code == 0 and "replay.copy" in table.stdout
    assert bad.exit_code != 0
