"""``/search?q=``: find a skill by what people type (issue 17).

A name, slug, alias or id that resolves (``ingest.skills.resolve_skill``, the taxonomy's alias matching,
merges followed) goes straight to the skill's page with a 303; anything else lists the best matches
(``search_skills``: prefixes, substrings, close spellings), each with its items in 90 days. An empty, overlong
or letterless query is a 400 page saying what to type, with the form again, never a 500.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from digest.db import transaction
from digest.errors import NotFoundError
from digest.ingest.skills import SEARCH_LIMIT, resolve_skill, search_skills
from digest.site.figures import ranking
from digest.web.context import Web

# No skill's name or alias is this long; longer input is refused rather than cut (the user would not know).
MAX_QUERY = 100


def query_problem(query: str) -> str | None:
    """Why ``query`` cannot be searched for, in one sentence, or None when it can."""
    if not query:
        return "Type a skill's name or one of its aliases, for example Python or k8s."
    if len(query) > MAX_QUERY:
        return f"That is {len(query):,} characters long; skill names are shorter than {MAX_QUERY}."
    if not _printable(query):
        return "That holds control or broken characters; type a skill's name, for example Python."
    if not any(char.isalnum() for char in query):
        return "A skill's name has letters or digits, for example C++ or Go."
    return None


def _printable(text: str) -> bool:
    # A lone surrogate cannot even be written back into the page as UTF-8.
    return not any(unicodedata.category(char) in ("Cc", "Cs") for char in text)


def router(web: Web, ranked: ranking.IndexCache) -> APIRouter:
    """The routes of this module; ``ranked`` is the skill ranking the public pages share."""
    routes = APIRouter()

    @routes.get("/search", response_class=HTMLResponse, response_model=None)
    def search(request: Request, q: str = "") -> HTMLResponse | RedirectResponse:
        query = " ".join(q.split())
        problem = query_problem(query)
        if problem is not None:
            echo = query[:MAX_QUERY] if _printable(query) else ""
            return web.page(request, "search.html", 400, query=echo, problem=problem, hits=[], items={})
        today = web.clock().astimezone(UTC).date()
        with transaction(web.rt.sessions) as session:
            try:
                skill = resolve_skill(session, query)
            except NotFoundError:
                hits = search_skills(session, query, SEARCH_LIMIT)
                items = {skill.skill_id: skill.items for skill in ranked.ranked(session, today)}
            else:
                return RedirectResponse(f"/skills/{quote(skill.slug)}", status_code=303)
        shown_items = {hit.id: items.get(hit.id, 0) for hit in hits}
        return web.page(request, "search.html", query=query, problem=None, hits=hits, items=shown_items)

    return routes
