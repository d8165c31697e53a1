"""What a page says about itself when it is shared or found: Open Graph and Twitter card tags (issue 17).

A link pasted in a chat or a post is shown as a card from these tags (https://ogp.me, Twitter's "summary"
card reads the ``og:`` ones where its own are missing); ``og:url`` must be absolute, so it is built from
``DIGEST_BASE_URL``.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.site.figures.records import SkillFigures

SITE_NAME = "Skill digests"


@dataclass(frozen=True, slots=True)
class Sharing:
    """The title, the description and the canonical absolute URL of a page."""

    title: str
    description: str
    url: str
    kind: str = "website"


def skill_sharing(figures: SkillFigures, base_url: str) -> Sharing:
    """A skill page's card: its figures in words, or what the page offers before any are computed."""
    return Sharing(
        f"{figures.name}: news, blog posts and papers · {SITE_NAME}",
        skill_description(figures),
        f"{base_url}/skills/{figures.slug}",
    )


def skill_description(figures: SkillFigures) -> str:
    """One or two sentences of figures: "1,234 items mentioned Python in the last 90 days; 310 in the last
    4 weeks, up 12% vs the prior 4 weeks." Before the first refresh there are no figures to state, and
    saying "0 items" would contradict the items the page lists (issue 17)."""
    name = figures.name
    offer = f"Get new {name} content by email, hourly, daily or weekly."
    if figures.as_of is None:
        return f"News articles, blog posts and papers that mention {name}. {offer}"
    total = f"{figures.total:,} item{'' if figures.total == 1 else 's'}"
    change = figures.change
    return (
        f"{total} mentioned {name} in the last {figures.window_days} days; {change.last:,} in the last "
        f"4 weeks, {change.words}. {offer}"
    )
