"""``GET /api/v1/skills/{skill}`` (a skill page's figures) and ``GET /api/v1/trends`` (skills moving most).

Both read the daily figure tables (``digest.site.figures``), as the skill pages do, over UTC days ending
today; the figures are those of the last ``refresh_figures`` (``as_of`` says when).
"""

from __future__ import annotations

from datetime import UTC, date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from digest.db import transaction
from digest.errors import NotFoundError
from digest.ingest.skills import resolve_skill, unknown_skill
from digest.ops.apikeys import READ, ApiKeyInfo
from digest.site.figures import read, trends
from digest.web.api_v1.auth import scoped
from digest.web.api_v1.problems import responses
from digest.web.context import Web

MAX_TRENDS = 100


class MoverOut(BaseModel):
    """A skill's items in the last period against the period before."""

    id: str
    name: str
    slug: str
    count: int = Field(description="items in the last period")
    prior_count: int = Field(description="items in the period before")
    change_percent: int | None = Field(description="rounded percent change; null when prior_count is 0")
    new: bool = Field(description="true when prior_count is 0: ranked by count after those with a percent")


class TrendsOut(BaseModel):
    """The skills moving most in one direction, over UTC days ``start`` to ``end`` against those before."""

    period: str
    direction: str
    start: date
    end: date
    skills: list[MoverOut]


def router(web: Web) -> APIRouter:
    """The routes of this module."""
    routes = APIRouter()
    # A default, not an annotation: FastAPI reads string annotations in the module, not this closure.
    reader = Depends(scoped(web, READ))

    @routes.get("/skills/{skill}", responses=responses(404))
    def skill_figures(
        skill: Annotated[str, Path(max_length=300, description="skill id, slug, name or alias")],
        _: ApiKeyInfo = reader,
    ) -> dict[str, Any]:
        """A skill page's figures: the shape of `digest skills stats --json`."""
        today = web.clock().astimezone(UTC).date()
        with transaction(web.rt.sessions) as session:
            try:
                found = resolve_skill(session, skill)
            except NotFoundError:
                raise NotFoundError(unknown_skill(session, skill)) from None
            return read.page_json(session, found.id, today)

    @routes.get("/trends", responses=responses())
    def moving(
        period: Annotated[Literal["7d", "28d"], Query(description="the last 7 or 28 UTC days")] = "7d",
        direction: Annotated[Literal["up", "down"], Query()] = "up",
        limit: Annotated[int, Query(ge=1, le=MAX_TRENDS)] = 20,
        _: ApiKeyInfo = reader,
    ) -> TrendsOut:
        """The skills moving most: each with its count, the prior count and the change in percent."""
        today = web.clock().astimezone(UTC).date()
        days = trends.PERIODS[period]
        with transaction(web.rt.sessions) as session:
            found = trends.movers(session, today, days, direction, limit)
        start = trends.span(today, days)[0]
        return TrendsOut(
            period=period,
            direction=direction,
            start=start,
            end=today,
            skills=[
                MoverOut(
                    id=m.skill_id,
                    name=m.name,
                    slug=m.slug,
                    count=m.count,
                    prior_count=m.prior,
                    change_percent=m.percent,
                    new=m.new,
                )
                for m in found
            ],
        )

    return routes
