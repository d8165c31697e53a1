"""Frozen records passed between stages. No ORM object crosses a stage boundary.

Records are named for where they are in their life (reader): ``ParsedEntry`` (parsed) becomes an
``Item`` row in storage, ``ItemForDigest`` when selected, and a ``ComposedEmail`` when rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one HTTP fetch of a feed returned."""

    url: str
    status_code: int
    content: bytes
    etag: str | None
    last_modified: str | None
    content_type: str
    # Set when the server moved the feed for good (301/308), so the stored URL follows.
    permanent_url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def not_modified(self) -> bool:
        """True for a 304 answer to a conditional GET."""
        return self.status_code == 304


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One feed entry, normalised.

    ``url`` is canonical (absolute, host lower-cased, no fragment, no tracking parameters); ``title`` and
    ``summary`` are plain text; ``summary_html`` is the entry's HTML reduced to a safe subset;
    ``published_at`` is UTC, or None when the feed gave no usable date (the store then uses the fetch
    time). ``external_id`` names a paper across feeds: ``arxiv:<id without version>`` or ``doi:<doi>``.
    """

    entry_key: str
    url: str | None
    title: str
    summary: str
    summary_html: str = ""
    authors: tuple[str, ...] = ()
    published_at: datetime | None = None
    language: str | None = None
    external_id: str | None = None
    category: str | None = None
    # Where people discuss it, when that is not the entry's own page: RSS <comments> (a Hacker News thread).
    discussion_url: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed document."""

    title: str
    link: str | None
    entries: tuple[ParsedEntry, ...]
    # feedparser's "bozo" note on a feed it could still read.
    warning: str | None = None
    # RSS <ttl>, in minutes: how long the publisher asks readers to wait.
    ttl_minutes: int | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class TagMatch:
    """That a text mentions a skill, with the evidence."""

    skill_id: str
    name: str
    category: str
    matched: tuple[str, ...]
    count: int
    in_title: bool
    score: float


@dataclass(frozen=True, slots=True)
class CrawlOutcome:
    """The result of refreshing one source, for the CLI and the logs."""

    source_id: int
    url: str
    status: str
    http_status: int | None
    new: int
    updated: int
    error: str | None
    # Ids of the items added or changed, for the matcher.
    changed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class OtherCopy:
    """Another feed's copy of a story a digest shows once ("also in N sources", issue 16)."""

    item_id: int
    source_name: str
    url: str | None


@dataclass(frozen=True, slots=True)
class ItemForDigest:
    """An item selected into a digest, with why it is there."""

    item_id: int
    title: str
    url: str | None
    summary: str
    source_name: str
    source_kind: str
    published_at: datetime | None
    ingested_at: datetime
    skill_id: str
    matched: tuple[str, ...]
    in_title: bool
    score: float
    # A discussion of it elsewhere (a Hacker News thread folded into the article, issue 16).
    discussion_url: str | None = None
    # The story's copies in other sources, folded into this entry (issue 16), one per source.
    also: tuple[OtherCopy, ...] = ()


@dataclass(frozen=True, slots=True)
class DigestSection:
    """The items of one skill in a digest."""

    skill_id: str
    skill_name: str
    skill_slug: str
    items: tuple[ItemForDigest, ...]
    # Items of this skill the cap left out: "+N more" links to the skill's page.
    more: int = 0


@dataclass(frozen=True, slots=True)
class SkillLink:
    """A skill offered to follow: its name and the slug of its page."""

    name: str
    slug: str


@dataclass(frozen=True, slots=True)
class SkillNoticeContent:
    """A followed skill that a taxonomy change merged into another (``into``) or dropped (issue 15)."""

    skill_name: str
    into: SkillLink | None
    offers: tuple[SkillLink, ...]


@dataclass(frozen=True, slots=True)
class DigestContent:
    """Everything a digest email says, before rendering."""

    delivery_id: int
    email: str
    cadence: str
    timezone: str
    window_start: datetime
    window_end: datetime
    sections: tuple[DigestSection, ...]
    more: int = 0
    unsubscribe_url: str = ""
    manage_url: str = ""
    base_url: str = ""
    # Followed skills merged or dropped since the last digest, told once (issue 15, item 7).
    notices: tuple[SkillNoticeContent, ...] = ()
    # The signed "view in browser" link of a sent delivery (issue 17); none in a preview.
    view_url: str = ""

    @property
    def item_count(self) -> int:
        """Items shown in the email."""
        return sum(len(section.items) for section in self.sections)

    @property
    def headline(self) -> ItemForDigest | None:
        """The item the subject leads with: the best-scored one shown, the first of equals (issue 17)."""
        shown = [item for section in self.sections for item in section.items]
        return max(shown, key=lambda item: item.score, default=None)


@dataclass(frozen=True, slots=True)
class ComposedEmail:
    """A rendered email, ready for a transport."""

    subject: str
    text: str
    html: str
    headers: tuple[tuple[str, str], ...] = field(default=())
    template_version: str = ""
    body_hash: str = ""


class DeliveryStatus(StrEnum):
    """Where an email row (digest or alert) is in its life; ``deliver.outbox`` moves it on. The CHECK
    constraints on ``deliveries.status`` and ``alert_deliveries.status`` (migration 0007) hold these."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


FINAL = (DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED)
# Rows in a page of the delivery history by default and at most (deliver/history.py). Here in the base
# because ``digest deliveries list --help`` shows them and the CLI starts without the wings (issue 17).
# A page's ids go into one IN (...) list; SQLite allows 32,766 parameters, the maximum stays far below.
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What became of one digest delivery."""

    delivery_id: int
    status: DeliveryStatus
    items: int
    message_id: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AlertFigures:
    """The figures an alert fired on, as its manifest stores them (``alert_deliveries.figures``)."""

    skill_id: str
    skill_name: str
    skill_slug: str
    period: str
    recent: int
    # Average count per period over the 4 weeks before the recent period.
    baseline: float
    # Percent change, or None when the baseline is 0.
    change: float | None
    # Counts per chart bar, oldest first, the last bar being the recent period.
    bars: tuple[int, ...]
    start: datetime
    end: datetime
    # The change in words ("up 120% vs the prior 4 weeks") and the alert's threshold, as sent.
    words: str
    threshold: int

    def to_json(self) -> dict[str, Any]:
        """The manifest's JSON form (datetimes as ISO 8601)."""
        return {
            "skill_id": self.skill_id,
            "skill_name": self.skill_name,
            "skill_slug": self.skill_slug,
            "period": self.period,
            "recent": self.recent,
            "baseline": self.baseline,
            "change": self.change,
            "bars": list(self.bars),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "words": self.words,
            "threshold": self.threshold,
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> AlertFigures:
        """The figures of a stored manifest."""
        change = stored["change"]
        return cls(
            skill_id=str(stored["skill_id"]),
            skill_name=str(stored["skill_name"]),
            skill_slug=str(stored["skill_slug"]),
            period=str(stored["period"]),
            recent=int(stored["recent"]),
            baseline=float(stored["baseline"]),
            change=None if change is None else float(change),
            bars=tuple(int(bar) for bar in stored["bars"]),
            start=datetime.fromisoformat(stored["start"]),
            end=datetime.fromisoformat(stored["end"]),
            words=str(stored["words"]),
            threshold=int(stored["threshold"]),
        )


@dataclass(frozen=True, slots=True)
class AlertItem:
    """An item behind an alert's change, as the email shows it."""

    title: str
    url: str | None
    source: str


@dataclass(frozen=True, slots=True)
class AlertContent:
    """Everything an alert email says, before rendering."""

    delivery_id: int
    email: str
    trend: AlertFigures
    items: tuple[AlertItem, ...]
    skill_url: str
    off_url: str
    manage_url: str
    base_url: str


@dataclass(frozen=True, slots=True)
class AlertOutcome:
    """What became of one alert delivery."""

    delivery_id: int
    status: DeliveryStatus
    message_id: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """A subscription as the CLI and web show it."""

    id: int
    subscriber_id: int
    email: str
    cadence: str
    hour: int
    weekday: int
    timezone: str
    state: str
    skills: tuple[str, ...]
    next_due_at: datetime
    # Where its next window starts (None until its first digest).
    last_window_end: datetime | None


def iso(value: datetime | None) -> str | None:
    """A time as ISO 8601 in UTC with a ``Z`` (how every JSON output writes times); None stays None."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def relative(value: datetime | None, now: datetime, *, due: bool = False) -> str:
    """``value`` in words from ``now``: "in 8 min", "3 h ago", or "overdue 8 d" for a ``due`` time past."""
    if value is None:
        return "-"
    seconds = (value - now).total_seconds()
    span = _span(abs(seconds))
    if span is None:
        return "now"
    if seconds > 0:
        return f"in {span}"
    return f"overdue {span}" if due else f"{span} ago"


def _span(seconds: float) -> str | None:
    minutes = int(seconds // 60)
    if minutes < 1:
        return None
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} d"
