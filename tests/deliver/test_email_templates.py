"""Every email template rendered from records holding hostile feed text, and `digest preview` end to end.

The HTML checks are what mail clients need: balanced markup (Outlook's Word engine and Gmail's sanitiser
each repair broken markup differently), no script or event handler, only http(s) links to the items or to
us, a preheader, inlined CSS with the dark-mode query kept. The text part must read as an email.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings
from digest.db import transaction
from digest.deliver.compose import EMAIL_KINDS, Composer, build_message
from digest.models import Delivery, Item, Subscription
from digest.records import (
    AlertContent,
    AlertFigures,
    AlertItem,
    ComposedEmail,
    DigestContent,
    DigestSection,
    ItemForDigest,
    OtherCopy,
)
from digest.runtime import Runtime
from tests.deliver.test_digests import BERLIN_DAILY, Ingest, at, follow
from tests.support import FeedServer, feed_server

BASE = "https://digest.example.com"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SPACERS = {"\u034f", "\u200c", "\xa0"}
SCRIPT = "<script>alert('x')</script>"
INJECTION = "\r\nBcc: victim@example.org"
IMG = '"><img src=x onerror=alert(1)>'
LONG_WORD = "Supercalifragilisticexpialidocious" * 5
LONG_URL = "https://blog.example.org/" + "very-long-path-segment/" * 15 + "?utm=" + "q" * 80


def item(
    item_id: int,
    title: str,
    url: str | None,
    kind: str,
    *,
    summary: str = "",
    source: str = "Example Wire",
    matched: tuple[str, ...] = ("GPU",),
    in_title: bool = True,
    also: tuple[OtherCopy, ...] = (),
) -> ItemForDigest:
    when = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    return ItemForDigest(
        item_id, title, url, summary, source, kind, when, when, "s", matched, in_title, 1.0, also=also
    )


def digest_content(**changes: Any) -> DigestContent:
    """Two sections, every kind of item, hostile text everywhere a feed controls it."""
    ai = DigestSection(
        "ai",
        "AI infrastructure",
        "ai-infrastructure",
        (
            item(
                1,
                f"{SCRIPT} GPU scheduling{INJECTION}",
                "https://news.example.com/gpu?a=1&b=2",
                "news",
                summary=f"Schedulers compared. {IMG}",
                source=f"Wire {IMG}",
                # Other feeds' copies of the story (issue 16): names and URLs are feed text too.
                also=(
                    OtherCopy(8, f"Mirror {SCRIPT}", "https://mirror.example.net/gpu?a=1&b=2"),
                    OtherCopy(9, "Scheme trick", "javascript:alert(2)"),
                ),
            ),
            item(
                2,
                "Ünïcödé: 日本語のタイトル — naïve café",
                "https://arxiv.org/abs/2611.00001",
                "paper",
                summary="Wörter " * 80,
                matched=("AI infrastructure", "GPU"),
                in_title=False,
            ),
            item(3, f"{LONG_WORD} in production", LONG_URL, "blog", summary=LONG_WORD),
        ),
        more=2,
    )
    python = DigestSection(
        "py", "Python", "python", (item(4, IMG, "javascript:alert(1)", "news", matched=("Python",)),)
    )
    fields: dict[str, Any] = {
        "delivery_id": 7,
        "email": "reader@example.com",
        "cadence": "daily",
        "timezone": "Europe/Berlin",
        "window_start": datetime(2026, 11, 28, 7, 0, tzinfo=UTC),
        "window_end": datetime(2026, 11, 29, 7, 0, tzinfo=UTC),
        "sections": (ai, python),
        # 2 of AI infrastructure's plus 3 of skills the cap left out altogether.
        "more": 5,
        "unsubscribe_url": f"{BASE}/u/unsubscribe-token",
        "manage_url": f"{BASE}/manage/manage-token",
        "base_url": BASE,
        # The masthead's link (issue 17), so the phone-width and dark-mode checks see it too.
        "view_url": f"{BASE}/view/view-token",
    }
    return DigestContent(**(fields | changes))


CONFIRMATION: dict[str, Any] = {
    "email": "reader@example.com",
    "skills": ["Kubernetes", f"Python {SCRIPT}"],
    "cadence": "weekly",
    "when": "on Mondays at 08:00 (Europe/Berlin)",
    "confirm_url": f"{BASE}/confirm/" + "t" * 160,
    "base_url": BASE,
    "days": 7,
}


@dataclass
class Sample:
    """One kind rendered, with what its links, preheader and text must hold."""

    email: ComposedEmail
    raw_html: str
    links: set[str]
    preheader: str
    text_must_hold: list[str]
    unsubscribe_url: str


def render_digest(composer: Composer) -> Sample:
    """The representative digest, rendered."""
    content = digest_content()
    items = [i for section in content.sections for i in section.items]
    urls = [i.url for i in items] + [copy.url for i in items for copy in i.also]
    links = {url for url in urls if url and url.startswith("https://")}
    return Sample(
        composer.digest(content),
        composer.env.get_template("email/digest/body.html").render(d=content),
        links,
        "9 new items about AI infrastructure, Python",
        [" ".join(i.title.split()) for i in items] + sorted(links),
        content.unsubscribe_url,
    )


def render_confirm(composer: Composer) -> Sample:
    """The confirmation email, rendered."""
    context = CONFIRMATION | {"skills": list(CONFIRMATION["skills"])}
    return Sample(
        composer.confirmation(**CONFIRMATION),
        composer.env.get_template("email/confirm/body.html").render(c=context),
        {CONFIRMATION["confirm_url"]},
        f"One click starts your weekly digest about Kubernetes, Python {SCRIPT}",
        [CONFIRMATION["confirm_url"]],
        "",
    )


def alert_content() -> AlertContent:
    """A rising skill, hostile text wherever a feed or a skill name controls it."""
    trend = AlertFigures(
        skill_id="ai",
        skill_name=f"AI infrastructure {SCRIPT}",
        skill_slug="ai-infrastructure",
        period="24h",
        recent=42,
        baseline=12.5,
        change=236.0,
        bars=(10, 12, 14, 11, 13, 12) * 4 + (9, 15, 12, 13, 42),
        start=datetime(2026, 11, 28, 12, tzinfo=UTC),
        end=datetime(2026, 11, 29, 12, tzinfo=UTC),
        words="up 236% vs the prior 4 weeks",
        threshold=50,
    )
    return AlertContent(
        delivery_id=3,
        email="reader@example.com",
        trend=trend,
        items=(
            AlertItem(
                title=f"{SCRIPT} GPU clusters{INJECTION}", url="https://news.example.com/gpu", source=IMG
            ),
            AlertItem(title=f"{LONG_WORD} at scale", url=LONG_URL, source="Example Wire"),
            AlertItem(title="Not a link", url="javascript:alert(1)", source="Wire"),
        ),
        skill_url=f"{BASE}/skills/ai-infrastructure",
        off_url=f"{BASE}/alerts/off/alert-token",
        manage_url=f"{BASE}/manage/manage-token",
        base_url=BASE,
    )


def render_alert(composer: Composer) -> Sample:
    """The representative trend alert, rendered."""
    content = alert_content()
    links = {"https://news.example.com/gpu", LONG_URL}
    titles = [" ".join(item.title.split()) for item in content.items]
    return Sample(
        composer.alert(content),
        composer.env.get_template("email/alert/body.html").render(a=content),
        links | {content.skill_url},
        f"AI infrastructure {SCRIPT}: up 236% vs the prior 4 weeks (42 in 24 hours)",
        titles + sorted(links),
        content.off_url,
    )


def render_manage(composer: Composer) -> Sample:
    """The manage link asked for on an unsubscribe page (issue 14), with markup in the address."""
    fields = {"email": f"{SCRIPT}@example.com", "manage_url": f"{BASE}/manage/" + "m" * 120, "base_url": BASE}
    return Sample(
        composer.manage_link(**fields),
        composer.env.get_template("email/manage/body.html").render(m=fields),
        {fields["manage_url"]},
        "Your link to change, pause or stop your digests",
        [fields["manage_url"]],
        "",
    )


SAMPLES: dict[str, Callable[[Composer], Sample]] = {
    "digest": render_digest,
    "confirm": render_confirm,
    "alert": render_alert,
    "manage": render_manage,
}


@dataclass
class Element:
    """A start tag and the text inside it."""

    tag: str
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        """The element's class names."""
        return set(self.attrs.get("class", "").split())


class Page(HTMLParser):
    """Elements in document order, and every way the markup is unbalanced."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.problems: list[str] = []
        self.comments: list[str] = []
        self._open: list[Element] = []
        self.feed(html)
        self.close()
        self.problems += [f"<{e.tag}> is never closed" for e in self._open]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1].tag != tag:
            self.problems.append(f"</{tag}> closes <{self._open[-1].tag if self._open else 'nothing'}>")
            return
        self._open.pop()

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def all(self, tag: str, cls: str | None = None) -> list[Element]:
        """Elements with this tag (and class)."""
        return [e for e in self.elements if e.tag == tag and (cls is None or cls in e.classes)]


@pytest.fixture(scope="module")
def composer() -> Composer:
    return Composer()


@pytest.fixture(params=EMAIL_KINDS)
def sample(request: pytest.FixtureRequest, composer: Composer) -> Sample:
    return SAMPLES[request.param](composer)


def test_every_email_kind_has_a_representative_sample() -> None:
    assert set(SAMPLES) == set(EMAIL_KINDS)


def test_the_templates_are_balanced_html_before_and_after_inlining(sample: Sample) -> None:
    assert Page(sample.raw_html).problems == []
    assert Page(sample.email.html).problems == []
    assert sample.email.html.startswith("<!DOCTYPE html>")


def test_feed_text_cannot_add_a_script_an_image_or_an_event_handler(sample: Sample) -> None:
    page = Page(sample.email.html)

    assert "<script" not in sample.email.html.lower()
    assert page.all("script") == [] and page.all("img") == [] and page.all("iframe") == []
    assert [(e.tag, a) for e in page.elements for a in e.attrs if a.startswith("on")] == []
    assert "&lt;script&gt;" in sample.email.html


def test_every_link_is_http_to_an_item_or_to_us(sample: Sample) -> None:
    hrefs = [a.attrs.get("href", "") for a in Page(sample.email.html).all("a")]

    assert hrefs
    assert [h for h in hrefs if not (h in sample.links or h == BASE or h.startswith(BASE + "/"))] == []
    assert sample.links <= set(hrefs)


def test_the_preheader_comes_first_hidden_and_padded_with_spacers(sample: Sample) -> None:
    page = Page(sample.email.html)
    body_index = page.elements.index(page.all("body")[0])
    preheader = page.elements[body_index + 1]
    text = "".join(preheader.text)

    assert "preheader" in preheader.classes
    assert "display: none" in preheader.attrs["style"] and "mso-hide: all" in preheader.attrs["style"]
    assert text.startswith(sample.preheader)
    spacers = text[len(sample.preheader) :]
    assert len(spacers) >= 100 and set(spacers) <= SPACERS


def test_css_is_inlined_and_the_media_queries_are_kept(sample: Sample) -> None:
    page = Page(sample.email.html)
    styles = "".join(t for s in page.all("style") for t in s.text)
    [card] = page.all("table", "card")

    assert all("font-family" in td.attrs.get("style", "") for td in page.all("td"))
    assert "max-width: 640px" in card.attrs["style"] and card.attrs["width"] == "100%"
    assert all(t.attrs.get("role") == "presentation" for t in page.all("table"))
    assert "@media (prefers-color-scheme: dark)" in styles and "@media (max-width: 480px)" in styles
    [scheme] = [m for m in page.all("meta") if m.attrs.get("name") == "color-scheme"]
    assert scheme.attrs["content"] == "light dark"
    # Outlook for Windows gets a fixed 640px column it can honour; everyone else gets max-width.
    assert any('width="640"' in comment for comment in page.comments)


def test_the_text_part_holds_every_title_url_and_the_unsubscribe_link(sample: Sample) -> None:
    text = sample.email.text
    flowing = " ".join(text.split())
    lines = [line.strip() for line in text.splitlines()]

    assert [t for t in sample.text_must_hold if t not in flowing] == []
    assert [u for u in sample.links if u not in lines] == []
    assert not sample.unsubscribe_url or sample.unsubscribe_url in lines
    assert "\r" not in text and "javascript:" not in text
    # Only a word too long to break may stretch a line past 72 characters.
    assert [line for line in text.splitlines() if len(line) > 72 and len(line.split()[-1]) < 60] == []
    assert "\n-- \n" in text


def test_the_subject_is_one_line(sample: Sample) -> None:
    assert "\n" not in sample.email.subject and "\r" not in sample.email.subject


def test_the_digest_subject_leads_with_the_top_headline_counts_what_it_shows_and_names_the_skills(
    composer: Composer,
) -> None:
    best = replace(item(5, "Kubernetes gang scheduling reaches beta", None, "news"), score=9.0)
    go = DigestSection("go", "Go", "go", (item(6, "Go 1.26 ships", None, "blog"),))
    kubernetes = DigestSection(
        "k8s",
        "Kubernetes",
        "kubernetes",
        (best, *(item(10 + n, f"Story {n}", None, "news") for n in range(5))),
        more=7,
    )

    # Issue 17's example: the best-scored item, "+ N more" of those the email shows, the skills.
    assert composer.digest(digest_content(sections=(go, kubernetes), more=7)).subject == (
        "Kubernetes gang scheduling reaches beta + 6 more · Go, Kubernetes"
    )
    long_title = item(7, "word " * 40, None, "news")
    one = composer.digest(digest_content(sections=(DigestSection("go", "Go", "go", (long_title,)),), more=0))
    assert one.subject.endswith("word… · Go") and len(one.subject) < 90
    many = tuple(
        DigestSection(f"s{n}", f"Skill {n}", f"s{n}", (item(n, "T", None, "news"),)) for n in range(5)
    )
    assert composer.digest(digest_content(sections=many, more=0)).subject == (
        "T + 4 more · Skill 0, Skill 1, Skill 2 +2"
    )


def test_each_item_shows_its_kind_and_why_it_was_chosen(composer: Composer) -> None:
    page = Page(composer.digest(digest_content()).html)
    badges = [("".join(b.text), b.classes) for b in page.all("td", "badge")]
    whys = ["".join(w.text) for w in page.all("td", "why")]
    text = composer.digest(digest_content()).text

    assert [kind for kind, _ in badges] == ["news", "paper", "blog", "news"]
    assert all(f"badge-{kind}" in classes for kind, classes in badges)
    # One short reason each, never the section's name again nor every variant (issue 17).
    assert whys == ["Why: in the title", "Why: as “GPU”", "Why: in the title", "Why: in the title"]
    assert [line.strip() for line in text.splitlines() if "Why:" in line] == [
        "Why: in the title",
        'Why: as "GPU"',
        "Why: in the title",
        "Why: in the title",
    ]
    plain = item(8, "A post", None, "blog", matched=("python",), in_title=False)
    section = DigestSection("py", "Python", "python", (plain,))
    assert "Why: in the text" in composer.digest(digest_content(sections=(section,), more=0)).text
    assert "[paper] Example Wire · 28 Nov 2026" in text


def test_an_entry_told_by_other_feeds_lists_them_and_links_only_web_addresses(composer: Composer) -> None:
    email = composer.digest(digest_content())
    [also] = [a for a in Page(email.html).all("td", "meta") if "".join(a.text).startswith("Also in")]

    assert "".join(also.text) == f"Also in 2 sources: Mirror {SCRIPT}, Scheme trick"
    assert [a.attrs["href"] for a in Page(email.html).all("a") if "mirror" in a.attrs["href"]] == [
        "https://mirror.example.net/gpu?a=1&b=2"
    ]
    assert (
        f"    Also in 2 sources:\n    - Mirror {SCRIPT}\n      https://mirror.example.net/gpu?a=1&b=2\n"
        "    - Scheme trick\n    Why:"
    ) in email.text
    assert email.text.count("Also in") == 1


def test_a_section_the_cap_cut_links_to_its_skill_page(composer: Composer) -> None:
    email = composer.digest(digest_content())
    links = {a.attrs["href"]: "".join(a.text) for a in Page(email.html).all("a")}
    lines = email.text.splitlines()

    assert links[f"{BASE}/skills/ai-infrastructure"] == "+2 more AI infrastructure items"
    assert f"{BASE}/skills/python" not in links
    assert "    +2 more AI infrastructure items:" in lines
    assert (
        lines[lines.index("    +2 more AI infrastructure items:") + 1]
        == f"    {BASE}/skills/ai-infrastructure"
    )
    # The 3 of skills with no section left are counted once, not under a skill they do not belong to.
    assert "+3 more items from skills that did not fit" in email.text
    assert "+3 more items from skills that did not fit" in " ".join(Page(email.html).all("body")[0].text)


def test_a_digest_without_cut_items_has_no_more_links(composer: Composer) -> None:
    content = digest_content(more=0)
    sections = tuple(DigestSection(s.skill_id, s.skill_name, s.skill_slug, s.items) for s in content.sections)

    email = composer.digest(digest_content(more=0, sections=sections))

    assert re.search(r"\+\d+ more", email.text + email.html) is None
    assert [a for a in Page(email.html).all("a") if "/skills/" in a.attrs["href"]] == []


def test_an_empty_digest_says_so_in_both_parts(composer: Composer) -> None:
    email = composer.digest(digest_content(sections=(), more=0))

    # Issue 17: when nothing came, say so and since when, not "0 new items".
    assert "Nothing new about your skills since Sat 28 Nov, 08:00." in email.text
    assert "Nothing new about your skills since Sat 28 Nov, 08:00." in email.html
    assert email.subject == "Nothing new since 28 Nov · your daily digest"


def test_line_breaks_in_feed_text_or_a_skill_name_never_become_headers(composer: Composer) -> None:
    content = digest_content()
    hostile = DigestSection("x", f"Rust{INJECTION}", "rust", content.sections[0].items)
    email = composer.digest(digest_content(sections=(hostile,)))

    message = build_message(
        email,
        sender="digest@example.com",
        recipient="reader@example.com",
        message_id_value="<digest.7@example.com>",
        date=datetime(2026, 11, 29, 7, 0, tzinfo=UTC),
        unsubscribe_url=content.unsubscribe_url,
    )
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)

    assert parsed["Bcc"] is None
    assert str(parsed["Subject"]) == email.subject and "Bcc: victim" in email.subject
    assert [line for line in email.text.splitlines() if line.startswith("Bcc:")] == []


def test_non_ascii_survives_the_message_in_both_parts(composer: Composer) -> None:
    email = composer.digest(digest_content())
    message = build_message(
        email,
        sender="digest@example.com",
        recipient="reader@example.com",
        message_id_value="<digest.7@example.com>",
        date=datetime(2026, 11, 29, 7, 0, tzinfo=UTC),
        unsubscribe_url=f"{BASE}/u/unsubscribe-token",
    )
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))

    assert text is not None and html is not None
    assert "日本語のタイトル — naïve café" in text.get_content()
    assert "日本語のタイトル — naïve café" in html.get_content()
    assert max(len(line) for line in message.as_bytes().splitlines()) <= 78


# `digest preview` through the command line, on both databases.


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


@pytest.fixture
def reader(rt: Runtime, server: FeedServer) -> Runtime:
    """A daily Berlin subscriber to Python and Kubernetes, with three items in the window before 16 Nov."""
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"), "Python", "Kubernetes")
    Ingest(rt, server)(
        at("2026-11-15T12:00"),
        ("Python 3.14 is out", "Faster startup."),
        ("Kubernetes 1.35 released", "New scheduler."),
        ("Python packaging <b>news</b>", "uv and pip."),
    )
    return rt


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment that makes the command line use the test's settings."""
    env = {
        "DIGEST_HOME": str(settings.home),
        "DIGEST_DATABASE_URL": settings.database_url,
        "DIGEST_SECRET_KEY": "test-secret-key-0123456789abcdefghijkl",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


NOW = "2026-11-16T07:00:30Z"


def stored(rt: Runtime) -> tuple[int, list[tuple[Any, ...]], list[str]]:
    """Deliveries, subscription schedules and outbox files: what a preview must leave alone."""
    outbox = Path(rt.settings.mail_url.removeprefix("maildir://")) / "new"
    with transaction(rt.sessions) as session:
        deliveries = session.scalar(select(func.count()).select_from(Delivery)) or 0
        schedules = [
            tuple(row)
            for row in session.execute(
                select(Subscription.id, Subscription.last_window_end, Subscription.next_due_at)
            ).all()
        ]
    return deliveries, schedules, sorted(p.name for p in outbox.iterdir()) if outbox.is_dir() else []


def preview(*args: str) -> Any:
    result = CliRunner().invoke(app, ["preview", *args])
    assert result.exit_code == 0, result.output
    return result


def test_preview_prints_the_text_part_and_stores_and_sends_nothing(reader: Runtime, cli_env: object) -> None:
    before = stored(reader)

    result = preview("Reader@Example.com", "--now", NOW)

    assert result.stdout.startswith(
        "Your daily digest\n=================\n3 new items for reader@example.com"
    )
    assert "Python 3.14 is out" in result.stdout and "Kubernetes 1.35 released" in result.stdout
    assert "/u/" in result.stdout
    assert stored(reader) == before


def test_preview_json_names_the_window_subject_and_items_in_order(
    reader: Runtime, cli_env: object, tmp_path: Path
) -> None:
    before = stored(reader)

    shown = json.loads(preview("reader@example.com", "--now", NOW, "--json").stdout)
    written = json.loads(
        preview("reader@example.com", "--now", NOW, "--json", "--out", str(tmp_path / "p.eml")).stdout
    )

    with transaction(reader.sessions) as session:
        titles = dict(session.execute(select(Item.id, Item.title)).tuples().all())
    text = (tmp_path / "p.eml").read_bytes().decode()
    assert set(shown) == {
        "subscriber",
        "cadence",
        "window_start",
        "window_end",
        "subject",
        "items",
        "more",
        "out",
    }
    assert (shown["subscriber"], shown["cadence"], shown["more"], shown["out"]) == (
        "reader@example.com",
        "daily",
        0,
        None,
    )
    assert (shown["window_start"], shown["window_end"]) == ("2026-11-15T07:00:00Z", "2026-11-16T07:00:00Z")
    assert shown["subject"] == "Python 3.14 is out + 2 more · Python, Kubernetes"
    assert sorted(shown["items"]) == sorted(titles)
    positions = [text.index(titles[item_id]) for item_id in shown["items"]]
    assert positions == sorted(positions)
    assert written == shown | {"out": str(tmp_path / "p.eml")}
    assert stored(reader) == before


def test_preview_writes_the_html_part_or_the_whole_message(
    reader: Runtime, cli_env: object, tmp_path: Path
) -> None:
    before = stored(reader)

    preview("reader@example.com", "--now", NOW, "--out", str(tmp_path / "p.html"))
    said = preview("reader@example.com", "--now", NOW, "--cadence", "daily", "--out", str(tmp_path / "p.eml"))

    html = (tmp_path / "p.html").read_text(encoding="utf-8")
    message = message_from_bytes((tmp_path / "p.eml").read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert html.startswith("<!DOCTYPE html>") and Page(html).problems == []
    assert "Python packaging news" in html and "<b>news</b>" not in html
    assert message["To"] == "reader@example.com" and message["List-Unsubscribe-Post"]
    assert message.get_content_type() == "multipart/alternative"
    body = message.get_body(("html",))
    assert body is not None and body.get_content().rstrip("\n") == html
    assert said.stdout.strip().endswith(f"preview written to {tmp_path / 'p.eml'}")
    assert stored(reader) == before


def run_at_once(env: dict[str, str], *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """The installed command in child processes, so its errors go through the one-line handler; all started
    at once (each only reads), since starting one costs over a second of CPU."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | env
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "digest.cli", *args],
            env=clean,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    done = []
    for child in children:
        stdout, stderr = child.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr))
    return done


def test_preview_refuses_an_unknown_address_or_output_in_one_line(
    reader: Runtime, cli_env: dict[str, str], tmp_path: Path
) -> None:
    unknown, suffix, cadence, bad_time = run_at_once(
        cli_env,
        ("preview", "nobody@example.com", "--now", NOW),
        ("preview", "reader@example.com", "--out", str(tmp_path / "p.pdf")),
        ("preview", "reader@example.com", "--cadence", "weekly", "--now", NOW),
        ("preview", "reader@example.com", "--now", "tomorrow"),
    )

    for done in (unknown, suffix, cadence, bad_time):
        assert done.returncode == 1 and done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "nobody@example.com has no subscription" in unknown.stderr
    assert ".html or .eml" in suffix.stderr and not (tmp_path / "p.pdf").exists()
    assert "choose --cadence from: daily" in cadence.stderr
    assert "not an ISO 8601 time" in bad_time.stderr
