"""Skill page and skill index latency at 1,000,000 items on PostgreSQL, beside baselines from the same run.

Setup (timed and reported): a fresh PostgreSQL database on 127.0.0.1:5432 with the bundled taxonomy; 60
sources (news, blogs, papers); ``--items`` synthetic items over the 120 days before ``NOW``, each tagged
with one to three of ``--skills`` skills whose popularity falls off like 1/rank (a few busy skills, a long
tail of rare ones), written with COPY; then ``daily.refresh`` over all 120 days (what
``digest skills refresh-figures`` runs) and ANALYZE. Every text is generated here (no feed's text).

Run: the real ASGI app in-process (``httpx.ASGITransport``, no socket), ``--requests`` sequential GETs per
page after a warm-up: the busiest, a middling and the rarest skill's page, the index, a search, a later
index page, the home page, the skill search (a name that redirects, a typo that lists suggestions) and an
unknown skill's 404 with its suggestions (issue 17). The index and the home page compute their totals (and
the home page its rising skills) once per refresh and keep them (``ranking.IndexCache``,
``rising.RisingCache``), so the first request after a refresh is timed separately. Baselines, same
run: the page of a skill with no items (same template and queries, nothing to count) and ``/healthz`` (one
``SELECT 1`` round trip through the same app). Target: p95 < 200 ms. Also times the refresh the beat task
runs (yesterday and today), and, beside the home page, the 90-day ``GROUP BY`` over tags it ran on every
request before issue 13 (the query alone, 10 runs). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import tempfile
import time
import uuid
from array import array
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
from sqlalchemy import create_engine, func, insert, select, text

from digest import db
from digest.cli.bootstrap import upgrade_all
from digest.config import load_settings
from digest.models import Skill, Source, Tag
from digest.runtime import Runtime
from digest.site.figures import daily, ranking
from digest.web import create_app

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
DAYS = 120
SOURCES = 60
KINDS = ("news", "blog", "paper")
WORDS = (
    "scaling", "notes", "lessons", "release", "benchmark", "guide", "migration", "security", "patterns",
    "production", "observability", "latency", "costs", "open", "model", "cluster", "pipeline", "review",
)  # fmt: skip
CHUNK = 50_000
# Pages that answer something else than 200 on purpose (issue 17).
ANSWERS = {"/search?q=kubernetes": 303, "/skills/large-language-mod": 404}


def main() -> None:
    """Create the database, populate it, measure, drop it; print the figures and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--skills", type=int, default=300)
    parser.add_argument("--requests", type=int, default=200, help="measured requests per page")
    args = parser.parse_args()
    name = f"digest_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        result = run(args, ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(json.dumps(result))


def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    settings = load_settings(
        home=Path(tempfile.mkdtemp()) / "home",
        database_url=database_url,
        secret_key="bench-secret-key-0123456789abcdefghijk",
    )
    rt = Runtime(settings)
    rng = random.Random(8)
    started = time.perf_counter()
    upgrade_all(rt, NOW)
    schema_s = time.perf_counter() - started
    started = time.perf_counter()
    skills = choose_skills(rt, args.skills, rng)
    tags = populate(rt, database_url, args.items, skills, rng)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    with db.transaction(rt.sessions) as session:
        refreshed = daily.refresh(session, (NOW - timedelta(days=DAYS)).date(), NOW.date(), now=NOW)
    refresh_s = time.perf_counter() - started
    with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    started = time.perf_counter()
    with db.transaction(rt.sessions) as session:
        daily.refresh(session, *daily.recent_days(NOW), now=NOW)
    recent_s = time.perf_counter() - started
    print(f"schema + taxonomy {schema_s:7.1f} s")
    print(
        f"load (COPY)       {load_s:7.1f} s   {args.items:,} items, {tags:,} tags, "
        f"{args.items / load_s:,.0f} items/s"
    )
    print(
        f"refresh, {refreshed.days} days {refresh_s:6.1f} s   {refreshed.daily_rows:,} daily rows, "
        f"{refreshed.pair_rows:,} pair rows"
    )
    print(f"refresh, 2 days   {recent_s:7.2f} s   (the beat task)")

    with db.transaction(rt.sessions) as session:
        volumes = ranking.skill_volumes(session, NOW.date())
        slugs = {
            skill_id: quote(slug) for skill_id, slug in session.execute(select(Skill.id, Skill.slug)).tuples()
        }
    ranked = sorted((count, skill_id) for skill_id, count in volumes.items())
    middle = ranked[len(ranked) // 2]
    idle = next(slugs[skill_id] for skill_id in sorted(slugs) if skill_id not in volumes)
    pages = {
        "baseline: /healthz (SELECT 1)": "/healthz",
        "baseline: skill with no items": f"/skills/{idle}",
        f"busiest skill ({ranked[-1][0]:,} items)": f"/skills/{slugs[ranked[-1][1]]}",
        f"middling skill ({middle[0]:,} items)": f"/skills/{slugs[middle[1]]}",
        f"rarest skill ({ranked[0][0]:,} items)": f"/skills/{slugs[ranked[0][1]]}",
        "/skills": "/skills",
        "/skills?q=data": "/skills?q=data",
        "/skills?page=3": "/skills?page=3",
        "home page /": "/",
        "/search?q=kubernetes (303)": "/search?q=kubernetes",
        "/search?q=pythn (suggestions)": "/search?q=pythn",
        "404 /skills/large-language-mod": "/skills/large-language-mod",
    }
    app = create_app(settings, clock=lambda: NOW)
    latencies = asyncio.run(measure(app, pages, args.requests))
    tag_counts = home_before_issue_13(rt, 10)
    cold = asyncio.run(measure_cold(app, rt, "/skills", 10))
    home_cold = asyncio.run(measure_cold(app, rt, "/", 10))
    print(f"{'page':<34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    table: dict[str, dict[str, Any]] = {}
    for label, samples in latencies.items():
        p50, p95, p99 = percentiles(samples)
        table[label] = {"path": pages[label], "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}
        print(f"{label:<34} {p50:8.1f} {p95:8.1f} {p99:8.1f}")
    tags_p50 = round(statistics.median(tag_counts), 1)
    print(f"{'before: / GROUP BY tags, query only':<34} {tags_p50:8.1f} (p50 of 10)")
    cold_p50, cold_max = round(statistics.median(cold), 1), round(max(cold), 1)
    print(f"{'/skills, first after a refresh':<34} {cold_p50:8.1f} (p50 of 10; max {cold_max})")
    home_cold_p50, home_cold_max = round(statistics.median(home_cold), 1), round(max(home_cold), 1)
    print(f"{'/, first after a refresh':<34} {home_cold_p50:8.1f} (p50 of 10; max {home_cold_max})")
    rt.close()
    worst = max(float(row["p95_ms"]) for label, row in table.items() if not label.startswith("baseline"))
    print(f"worst p95 of the skill pages and index: {worst:.1f} ms (target < 200 ms)")
    return {
        "items": args.items,
        "tags": tags,
        "skills": len(skills),
        "days": DAYS,
        "schema_s": round(schema_s, 1),
        "load_s": round(load_s, 1),
        "refresh_all_s": round(refresh_s, 1),
        "refresh_recent_s": round(recent_s, 2),
        "daily_rows": refreshed.daily_rows,
        "pair_rows": refreshed.pair_rows,
        "requests_per_page": args.requests,
        "pages": table,
        "home_page_p50_ms": table["home page /"]["p50_ms"],
        "home_tags_query_before_p50_ms": tags_p50,
        "skills_index_after_refresh_p50_ms": cold_p50,
        "skills_index_after_refresh_max_ms": cold_max,
        "home_after_refresh_p50_ms": home_cold_p50,
        "home_after_refresh_max_ms": home_cold_max,
        "worst_p95_ms": worst,
        "target_p95_ms": 200,
    }


def choose_skills(rt: Runtime, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """``count`` skills (id, name) of the bundled taxonomy, busiest first."""
    with db.transaction(rt.sessions) as session:
        rows = session.execute(
            select(Skill.id, Skill.name).where(Skill.merged_into.is_(None)).order_by(Skill.id)
        ).all()
    return [(skill_id, name) for skill_id, name in rng.sample(rows, count)]


def populate(
    rt: Runtime, database_url: str, items: int, skills: list[tuple[str, str]], rng: random.Random
) -> int:
    """Sources, items and tags through COPY; returns the number of tags."""
    # 1/rank popularity: the busiest skill is tagged about 300 times as often as the rarest.
    cumulative = list(accumulate(1 / (rank + 1) for rank in range(len(skills))))
    start = NOW - timedelta(days=DAYS)
    span = int((NOW - start).total_seconds()) - 1
    sources = array("H", (rng.randrange(1, SOURCES + 1) for _ in range(items)))
    seconds = array("I", (rng.randrange(span) for _ in range(items)))
    tagged = [
        tuple(
            dict.fromkeys(rng.choices(range(len(skills)), cum_weights=cumulative, k=rng.choice((1, 1, 2, 3))))
        )
        for _ in range(items)
    ]
    # Sixty rows: through SQLAlchemy, which fills the columns' Python-side defaults.
    with db.transaction(rt.sessions) as session:
        session.execute(
            insert(Source),
            [
                {
                    "id": number,
                    "url": f"https://{KINDS[number % 3]}{number}.example/feed",
                    "name": f"{KINDS[number % 3].capitalize()} source {number}",
                    "kind": KINDS[number % 3],
                    "next_fetch_at": NOW + timedelta(days=1),
                    "created_at": start,
                }
                for number in range(1, SOURCES + 1)
            ],
        )
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    tags = 0
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        columns = (
            "id, source_id, entry_key, story_key, url, title, summary, summary_html, authors, published_at, "
            "ingested_at, updated_at, content_hash, tagged_version"
        )
        with cursor.copy(f"COPY items ({columns}) FROM STDIN") as copy:
            for first in range(0, items, CHUNK):
                buffer = io.StringIO()
                for index in range(first, min(items, first + CHUNK)):
                    at = _pg(start + timedelta(seconds=seconds[index]))
                    title = f"{skills[tagged[index][0]][1]} {' '.join(rng.sample(WORDS, 4))}"
                    buffer.write(
                        f"{index + 1}\t{sources[index]}\tentry-{index + 1}\tstory-{index + 1}\t"
                        f"https://site{index % 97}.example/posts/{index + 1}\t{_escape(title)}\t\t\t[]\t"
                        f"{at}\t{at}\t{at}\t{index + 1:064x}\tbench\n"
                    )
                copy.write(buffer.getvalue())
        with cursor.copy(
            "COPY item_skills (item_id, skill_id, ingested_at, matched, count, in_title, score) FROM STDIN"
        ) as copy:
            for first in range(0, items, CHUNK):
                buffer = io.StringIO()
                for index in range(first, min(items, first + CHUNK)):
                    at = _pg(start + timedelta(seconds=seconds[index]))
                    for position, skill in enumerate(tagged[index]):
                        skill_id, name = skills[skill]
                        matched = _escape(json.dumps([name]))
                        in_title = "t" if position == 0 else "f"
                        buffer.write(f"{index + 1}\t{skill_id}\t{at}\t{matched}\t1\t{in_title}\t0.5\n")
                        tags += 1
                copy.write(buffer.getvalue())
        cursor.execute("SELECT setval('items_id_seq', %s)", (items,))
        cursor.execute("SELECT setval('sources_id_seq', %s)", (SOURCES,))
    return tags


def home_before_issue_13(rt: Runtime, times: int) -> list[float]:
    """Milliseconds of the query the home page ran per request before issue 13, alone (no page around it)."""
    query = (
        select(Skill.name, Skill.slug, func.count(Tag.item_id).label("n"))
        .join(Tag, Tag.skill_id == Skill.id)
        .where(Tag.ingested_at >= NOW - timedelta(days=90))
        .group_by(Skill.id, Skill.name, Skill.slug)
        .order_by(func.count(Tag.item_id).desc(), Skill.name)
        .limit(40)
    )
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        with db.transaction(rt.sessions) as session:
            session.execute(query).all()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def measure(app: Any, pages: dict[str, str], requests: int) -> dict[str, list[float]]:
    """Milliseconds per request for each page, after five unmeasured requests each."""
    transport = httpx.ASGITransport(app=app)
    samples: dict[str, list[float]] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client:
        for label, path in pages.items():
            for _ in range(5):
                _check(await client.get(path), path)
            timings = []
            for _ in range(requests):
                began = time.perf_counter()
                response = await client.get(path)
                timings.append((time.perf_counter() - began) * 1000)
                _check(response, path)
            samples[label] = timings
    return samples


async def measure_cold(app: Any, rt: Runtime, path: str, times: int) -> list[float]:
    """Milliseconds of the first request after each of ``times`` refreshes (the index recomputes its
    totals then; every later request reuses them until the next refresh).
    """
    timings = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench.local"
    ) as client:
        for _ in range(times):
            with db.transaction(rt.sessions) as session:
                daily.refresh(session, *daily.recent_days(NOW), now=NOW)
            began = time.perf_counter()
            _check(await client.get(path), path)
            timings.append((time.perf_counter() - began) * 1000)
    return timings


def _check(response: httpx.Response, path: str) -> None:
    """Every page answers 200 but the search's redirect to a skill and the unknown skill's 404."""
    expected = ANSWERS.get(path, 200)
    if response.status_code != expected:
        raise RuntimeError(f"{path}: {response.status_code}, expected {expected}")


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p95 and p99 in milliseconds, rounded to 0.1."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return round(statistics.median(samples), 1), round(cuts[94], 1), round(cuts[98], 1)


def _pg(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+00")


def _escape(value: str) -> str:
    # COPY's text format: backslash, tab and newline are special.
    return value.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


if __name__ == "__main__":
    main()
