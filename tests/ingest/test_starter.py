"""The starter catalogue (issue 16): curated OPML shipped in the package, imported by `--starter`.

Nothing here fetches the catalogue's URLs: only the files are read.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from digest.ingest.catalog import STARTER_FILES, starter_catalogue
from digest.ingest.opml import parse_opml
from tests.ingest.test_feeds_cli import digest, run_json

ARXIV_CATEGORIES = ("cs.AI", "cs.LG", "cs.CL", "cs.CV", "cs.DC", "cs.DB", "cs.CR", "cs.SE", "cs.PL", "cs.NI")


def test_every_starter_entry_is_a_unique_https_url_with_a_kind_and_an_interval() -> None:
    feeds = [feed for path in STARTER_FILES for feed in parse_opml(path.read_bytes()).feeds]
    for path in STARTER_FILES:
        assert parse_opml(path.read_bytes()).skipped == ()

    urls = [feed.url for feed in feeds]
    assert len(urls) == len(set(urls)) >= 120
    for feed in feeds:
        parts = urlsplit(feed.url)
        assert parts.scheme == "https" and parts.hostname and "." in parts.hostname, feed.url
        assert feed.kind in ("news", "blog", "paper") and feed.interval_seconds, feed
    assert set(Counter(feed.kind for feed in feeds)) == {"news", "blog", "paper"}


def test_the_arxiv_listings_cover_the_categories_and_are_fetched_once_a_day() -> None:
    papers = starter_catalogue("paper").feeds

    urls = {feed.url for feed in papers}
    assert {f"https://rss.arxiv.org/rss/{category}" for category in (*ARXIV_CATEGORIES, "stat.ML")} <= urls
    assert {feed.interval_seconds for feed in papers} == {86400}


def test_the_derived_blog_list_carries_its_licence_and_attribution() -> None:
    blogs = STARTER_FILES[1].read_text()
    notice = (STARTER_FILES[1].parent / "NOTICE.md").read_text()

    assert "kilimchoi/engineering-blogs (CC BY-SA 4.0)" in blogs
    assert "starter-engineering-blogs.opml" in notice and "CC BY-SA 4.0" in notice
    assert (STARTER_FILES[1].parent / "licenses" / "CC-BY-SA-4.0.txt").is_file()


@pytest.mark.slow
def test_the_starter_import_is_idempotent_and_round_trips_through_export(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert digest(home, "db", "upgrade").returncode == 0

    papers = run_json(home, "feeds", "import", "--starter", "--only", "paper")
    first = run_json(home, "feeds", "import", "--starter")
    again = run_json(home, "feeds", "import", "--starter")
    listed = run_json(home, "feeds", "list")
    exported = digest(home, "feeds", "export")

    assert isinstance(papers, dict) and isinstance(first, dict) and isinstance(again, dict)
    assert len(papers["added"]) == len(starter_catalogue("paper").feeds)
    assert again["added"] == [] and len(again["known"]) == len(papers["added"]) + len(first["added"])
    assert isinstance(listed, list) and len(listed) >= 120
    assert {row["kind"] for row in listed} == {"news", "blog", "paper"}
    round_trip = parse_opml(exported.stdout.encode()).feeds
    assert {(f.url, f.kind, f.interval_seconds) for f in round_trip} == {
        (f.url, f.kind, f.interval_seconds) for f in starter_catalogue().feeds
    }


def test_starter_and_a_file_together_or_neither_are_refused_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert digest(home, "db", "upgrade").returncode == 0

    neither = digest(home, "feeds", "import")
    both = digest(home, "feeds", "import", str(STARTER_FILES[0]), "--starter")
    bad_kind = digest(home, "feeds", "import", "--starter", "--only", "podcast")

    for done in (neither, both, bad_kind):
        assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
