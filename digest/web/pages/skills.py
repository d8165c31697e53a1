"""``/skills``, the index by items in 90 days, and ``/skills/{slug}``, one skill's page.

A skill's page carries ``<link rel="alternate">`` to its Atom and JSON Feed (``digest.web.stream``) and Open
Graph tags with its figures (``sharing``). A slug no skill answers to is a 404 page that suggests the nearest
skills, as the command line does (``ingest.skills.search_skills``), and offers the search (issue 17).
"""

from __future__ import annotations

from datetime import UTC
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from digest.db import transaction
from digest.errors import NotFoundError
from digest.ingest import queries
from digest.ingest.skills import SUGGESTIONS, resolve_skill, search_skills
from digest.site.figures import ranking, read, records
from digest.web.context import Web
from digest.web.forms import whole_number
from digest.web.pages.search import MAX_QUERY
from digest.web.pages.sharing import skill_sharing
from digest.web.stream import ATOM_TYPE, JSON_FEED_TYPE

# Past any real index; a larger page number is read as the first page.
MAX_PAGE = 100_000


def router(web: Web, ranked: ranking.IndexCache) -> APIRouter:
    """The routes of this module; ``ranked`` is the skill ranking the public pages share."""
    routes = APIRouter()

    @routes.get("/skills", response_class=HTMLResponse)
    def skills_index(request: Request, q: str = "", page: str = "1") -> HTMLResponse:
        today = web.clock().astimezone(UTC).date()
        number = whole_number(page, 1, MAX_PAGE) or 1
        with transaction(web.rt.sessions) as session:
            everything = ranked.ranked(session, today)
            listing = ranking.skill_index(session, everything, q[:MAX_QUERY], number, records.INDEX_PAGE_SIZE)
        return web.page(request, "skills.html", listing=listing)

    @routes.get("/skills/{slug}", response_class=HTMLResponse, response_model=None)
    def skill_page(request: Request, slug: str) -> HTMLResponse | RedirectResponse:
        today = web.clock().astimezone(UTC).date()
        with transaction(web.rt.sessions) as session:
            try:
                skill = resolve_skill(session, slug)
            except NotFoundError:
                # The words of the slug ("large-language-model") find the skill by name or alias.
                typed = " ".join(slug.replace("-", " ").split())[:MAX_QUERY]
                close = search_skills(session, typed, SUGGESTIONS)
                return web.page(request, "missing.html", 404, typed=typed, suggestions=close)
            if slug != skill.slug:
                # A merged skill's old slug, an alias or an id: one canonical address per skill.
                return RedirectResponse(f"/skills/{quote(skill.slug)}", status_code=301)
            shown = read.skill_figures(session, skill.id, today)
            latest = read.latest_items(session, skill.id)
            watched = queries.watched_for(session, skill.id)
        feeds = (
            ("Atom", ATOM_TYPE, f"/skills/{quote(skill.slug)}/feed.atom"),
            ("JSON Feed", JSON_FEED_TYPE, f"/skills/{quote(skill.slug)}/feed.json"),
        )
        return web.page(
            request,
            "skill.html",
            figures=shown,
            latest=latest,
            description=skill.description,
            watched=watched,
            feeds=feeds,
            sharing=skill_sharing(shown, web.settings.base_url),
        )

    return routes
