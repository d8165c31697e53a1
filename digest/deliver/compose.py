"""Records -> subject, text and HTML, and the MIME message with its headers; the template archive.

Pure but for reading templates and, in ``archive_templates`` / ``archived_templates``, the table that
keeps every template version a message was sent with, so a replay renders the bytes that were sent.

Each email kind is a folder ``templates/email/<kind>/`` holding ``subject.txt``, ``body.txt`` and
``body.html`` on the shared ``base.*`` (warehouse). HTML is autoescaped and then CSS-inlined, so feed text
can never inject markup; header values are built by ``email.message`` which refuses CR/LF.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import DictLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest import PACKAGE_DIR
from digest.deliver.fragments import FRAGMENT_LIMIT, Fragments, HtmlSplice, rendered
from digest.models import TemplateVersion
from digest.records import AlertContent, ComposedEmail, DigestContent

EMAIL_KINDS = ("digest", "confirm", "alert", "manage")
PARTS = ("subject.txt", "body.txt", "body.html")


def templates_dir() -> Path:
    """Where the templates are: inside the installed package, else beside it in a source checkout."""
    installed = PACKAGE_DIR / "templates"
    return installed if installed.is_dir() else PACKAGE_DIR.parent / "templates"


class Composer:
    """Renders emails from records with one Jinja2 environment."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        files: Mapping[str, str] | None = None,
        fragments: int = FRAGMENT_LIMIT,
    ) -> None:
        """Templates from ``root`` (the installed ones by default), or exactly ``files`` (an archived
        version, by path under the templates folder); at most ``fragments`` shared pieces kept."""
        self.root = root or templates_dir()
        self._fixed = dict(files) if files is not None else None
        self.fragments = Fragments(fragments)
        self.env = Environment(
            loader=FileSystemLoader(self.root) if self._fixed is None else DictLoader(self._fixed),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["local"] = _local_time
        self.env.filters["wordwrap"] = wrap_words
        # ``_render`` passes the fragments it keeps; a template rendered on its own renders every block.
        self.env.globals["fragment"] = rendered
        self._inliner = css_inline.CSSInliner(keep_style_tags=True)
        self._archives: dict[str, Composer] = {}
        # Template versions this process has seen stored in the archive (``archive_templates``).
        self.archived: set[str] = set()

    @cached_property
    def versions(self) -> dict[str, str]:
        """A hash of each kind's templates and the shared base: what a stored manifest refers to."""
        return {kind: version_of(self.files(kind)) for kind in EMAIL_KINDS}

    def files(self, kind: str) -> dict[str, str]:
        """The template files of ``kind`` and the shared base, by path under the templates folder: what
        ``archive_templates`` keeps per version so a replay renders with the templates it was sent with."""
        if self._fixed is not None:
            wanted = (f"email/{kind}/", "email/base.")
            return {name: text for name, text in self._fixed.items() if name.startswith(wanted)}
        email = self.root / "email"
        paths = sorted([*(email / kind).glob("*"), *email.glob("base.*")])
        return {path.relative_to(self.root).as_posix(): path.read_text(encoding="utf-8") for path in paths}

    def digest(self, content: DigestContent, archived: Mapping[str, str] | None = None) -> ComposedEmail:
        """The digest email for ``content``; with ``archived`` files, as that past version rendered it."""
        context = {"d": content}
        if archived is None or version_of(archived) == self.versions["digest"]:
            return self._render("digest", context)
        return self._archived(archived)._render("digest", context)

    def alert(self, content: AlertContent, archived: Mapping[str, str] | None = None) -> ComposedEmail:
        """A trend alert email for ``content``; with ``archived`` files, as that past version rendered it."""
        context = {"a": content}
        if archived is None or version_of(archived) == self.versions["alert"]:
            return self._render("alert", context)
        return self._archived(archived)._render("alert", context)

    def _archived(self, files: Mapping[str, str]) -> Composer:
        """A composer over archived template files (one per version, kept: replays of a slot come in runs)."""
        version = version_of(files)
        found = self._archives.get(version)
        if found is None:
            found = self._archives[version] = Composer(self.root, files=files, fragments=self.fragments.limit)
        return found

    def confirmation(
        self,
        *,
        email: str,
        skills: Sequence[str],
        cadence: str,
        when: str,
        confirm_url: str,
        base_url: str,
        days: int,
    ) -> ComposedEmail:
        """The double opt-in email: what was asked for, when it would arrive, and the link that confirms."""
        context = {
            "c": {
                "email": email,
                "skills": list(skills),
                "cadence": cadence,
                "when": when,
                "confirm_url": confirm_url,
                "base_url": base_url,
                "days": days,
            }
        }
        return self._render("confirm", context)

    def manage_link(self, *, email: str, manage_url: str, base_url: str) -> ComposedEmail:
        """The manage link, mailed to the address on file when someone asks for it on the unsubscribe
        page (issue 14: an unsubscribe link never shows it)."""
        return self._render("manage", {"m": {"email": email, "manage_url": manage_url, "base_url": base_url}})

    def _render(self, kind: str, context: dict[str, Any]) -> ComposedEmail:
        """Subject, text and inlined HTML of ``templates/email/<kind>/``, with the hash a replay checks."""
        shared = {**context, "fragment": self.fragments.text}
        subject = " ".join(self.env.get_template(f"email/{kind}/subject.txt").render(shared).split())
        text = self.env.get_template(f"email/{kind}/body.txt").render(shared).strip() + "\n"
        # Shared pieces of the HTML are inlined where they stand the first time, then put in after (issue 18).
        splice = HtmlSplice(self.fragments)
        markup = self.env.get_template(f"email/{kind}/body.html").render({**context, "fragment": splice})
        html = splice.finish(self._inliner.inline(markup))
        return ComposedEmail(
            subject=subject,
            text=text,
            html=html,
            template_version=self.versions[kind],
            body_hash=body_hash(subject, text, html),
        )


def body_hash(subject: str, text: str, html: str) -> str:
    """The hash stored with a sent email and checked by a replay: of its subject and both parts."""
    return hashlib.sha256(f"{subject}\x00{text}\x00{html}".encode()).hexdigest()


def message_id(delivery_id: int, sender: str, *, replay: int = 0) -> str:
    """A stable Message-ID: the same delivery always gets the same id, so a receiver can drop a repeat."""
    domain = sender.rpartition("@")[2] or "localhost"
    suffix = f".replay{replay}" if replay else ""
    return f"<digest.{delivery_id}{suffix}@{domain}>"


def build_message(
    email: ComposedEmail,
    *,
    sender: str,
    recipient: str,
    message_id_value: str,
    date: datetime,
    unsubscribe_url: str,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> EmailMessage:
    """multipart/alternative (text, then HTML) with the bulk-mail headers of RFC 2369 and RFC 8058."""
    domain = sender.rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = Address(display_name="Skill digest", addr_spec=sender)
    message["To"] = recipient
    message["Subject"] = email.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id_value
    message["List-Id"] = f"Skill digests <digests.{domain}>"
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>, <mailto:{sender}?subject=unsubscribe>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Precedence"] = "bulk"
    message["Auto-Submitted"] = "auto-generated"
    for name, value in (*email.headers, *extra_headers):
        message[name] = value
    message["MIME-Version"] = "1.0"
    message["Content-Type"] = "multipart/alternative"
    message.attach(_text_part(email.text, "plain"))
    message.attach(_text_part(email.html, "html"))
    return message


def _text_part(body: str, subtype: str) -> EmailMessage:
    """A UTF-8 text part, quoted-printable: every line stays under SMTP's 998-character limit (RFC 5322
    2.1.1). Encoded by ``binascii`` in C; ``set_content``'s pure-Python encoder was a third of a digest's
    time (docs/performance.md)."""
    part = EmailMessage()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii"))
    return part


def wrap_words(
    text: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    """Jinja's ``wordwrap`` filter, greedy and without ``textwrap``, which cost more than the rest of a
    text part. Lines break at spaces only (``break_on_hyphens`` is accepted and ignored); a word longer
    than ``width`` stands on its own line unless ``break_long_words``."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        line = ""
        for word in paragraph.split():
            while break_long_words and len(word) > width:
                if line:
                    lines.append(line)
                    line = ""
                lines.append(word[:width])
                word = word[width:]
            if not line:
                line = word
            elif len(line) + 1 + len(word) <= width:
                line += " " + word
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return (wrapstring or "\n").join(lines)


def with_headers(email: ComposedEmail, headers: Iterable[tuple[str, str]]) -> ComposedEmail:
    """The same email with more headers."""
    return replace(email, headers=(*email.headers, *headers))


def _local_time(value: datetime, timezone: str, pattern: str = "%a %d %b %Y, %H:%M") -> str:
    return value.astimezone(ZoneInfo(timezone)).strftime(pattern)


def version_of(files: Mapping[str, str]) -> str:
    """The version of a set of template files: a hash of their names and contents, in path order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.rpartition("/")[2].encode() + b"\x00" + files[name].encode("utf-8") + b"\x00")
    return digest.hexdigest()[:12]


def archive_templates(session: Session, composer: Composer, kind: str, version: str, now: datetime) -> None:
    """Keep the template files of ``version`` in the database (once), so a replay after a template change
    still renders the bytes that were sent."""
    if version in composer.archived:
        return
    if version == composer.versions[kind]:
        postgres = session.get_bind().dialect.name == "postgresql"
        dialect_insert = postgresql.insert if postgres else sqlite.insert
        session.execute(
            dialect_insert(TemplateVersion)
            .values(kind=kind, version=version, files=composer.files(kind), created_at=now)
            .on_conflict_do_nothing(index_elements=["kind", "version"])
        )
    composer.archived.add(version)


def archived_templates(session: Session, kind: str, version: str | None) -> dict[str, str] | None:
    """The files of an archived template version, if it was archived."""
    if version is None:
        return None
    files = session.scalar(
        select(TemplateVersion.files).where(TemplateVersion.kind == kind, TemplateVersion.version == version)
    )
    return dict(files) if files is not None else None
