"""``/skills/suggest?q=``: skill names for the signup form's autocomplete (issue 17), as small JSON.

The form's ``<datalist>`` is filled by ``forms.js`` from here as the person types (the browser shows the
options; no framework). The answer depends only on the taxonomy, so browsers and proxies may keep it for
an hour. Bad input is a 400 with one sentence, as JSON, since a script reads it.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from digest.db import transaction
from digest.ingest.skills import search_skills
from digest.web.context import Web
from digest.web.forms import whole_number
from digest.web.pages.search import MAX_QUERY

DEFAULT_LIMIT = 8
MAX_LIMIT = 20
CACHE = "public, max-age=3600"


def router(web: Web) -> APIRouter:
    """The routes of this module (declared before ``/skills/{slug}``, which would take "suggest")."""
    routes = APIRouter()

    @routes.get("/skills/suggest")
    def suggest(q: str = "", limit: str = str(DEFAULT_LIMIT)) -> JSONResponse:
        query = " ".join(q.split())
        count = whole_number(limit, 1, MAX_LIMIT)
        if not query:
            return _refused("give q, the start of a skill's name")
        if len(query) > MAX_QUERY:
            return _refused(f"q is longer than {MAX_QUERY} characters")
        if count is None:
            return _refused(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        with transaction(web.rt.sessions) as session:
            hits = search_skills(session, query, count)
        skills = [{"name": hit.name, "slug": hit.slug, "matched": hit.matched} for hit in hits]
        return JSONResponse({"q": query, "skills": skills}, headers={"Cache-Control": CACHE})

    return routes


def _refused(message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=400)
