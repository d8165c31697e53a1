"""Public pages: health, the home page, the skill index, one page per skill, and the skill search.

    home.py    /healthz, / (what the service is, the skills rising most, the busiest of 90 days)
    skills.py  /skills (the index), /skills/{slug} (figures, feeds, sharing tags; a 404 with suggestions)
    search.py  /search?q= (a name or alias goes straight to its page; anything else lists suggestions)
    suggest.py /skills/suggest?q= (skill names as JSON, for the signup form's autocomplete)

Every page here reads the daily tables ``digest.site.figures`` keeps (issue 8), not the tags: the home page,
``/skills`` and the search share one cached ranking (issue 13), and the rising skills are cached the same
way, so no page runs a ``GROUP BY`` over tags per request.
"""

from __future__ import annotations

from fastapi import APIRouter

from digest.site.figures import ranking
from digest.web.context import Web
from digest.web.pages import home, search, skills, suggest


def router(web: Web) -> APIRouter:
    """The routes of the public pages."""
    routes = APIRouter()
    ranked = ranking.IndexCache()
    # Before ``/skills/{slug}``, which would read "suggest" as a slug.
    routes.include_router(suggest.router(web))
    for module in (home, skills, search):
        routes.include_router(module.router(web, ranked))
    return routes
