"""The `digest` command as scripts use it: --help everywhere, --json shapes, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from digest.cli import app
from tests.support import FeedServer, Route, digest_here, feed_server, rss


def commands(group: click.Command, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, sub in getattr(group, "commands", {}).items():
        yield from commands(sub, (*prefix, name))


ALL_COMMANDS = sorted(commands(typer.main.get_command(app)))


def digest(
    home: Path, *args: str, extra_env: dict[str, str] | None = None, child: bool = False
) -> subprocess.CompletedProcess[str]:
    """``digest ARGS`` on ``home``, in this process unless ``child`` (the end-to-end pipeline runs the real
    ``python -m digest.cli``)."""
    # Offline, as the test settings are: a confirmed subscription must not add the public query feeds
    # (issue 16), which the next crawl would fetch from beyond loopback.
    env = {"DIGEST_HOME": str(home), "DIGEST_SKILL_SOURCES": "off", **(extra_env or {})}
    if not child:
        return digest_here(env, *args)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", *args],
        env=inherited | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: " ".join(c) or "digest")
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])

    assert result.exit_code == 0
    assert "Usage" in result.output


def test_a_missing_schema_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    done = digest(tmp_path / "home", "feeds", "list")

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "digest db upgrade" in done.stderr


def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    done = digest(tmp_path / "home", "db", "upgrade", extra_env={"DIGEST_MAIL_URL": "ftp://mail.example.com"})

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "DIGEST_MAIL_URL" in line and "smtp://" in line


@pytest.fixture
def home(tmp_path: Path, upgraded_home: Path) -> Path:
    return Path(shutil.copytree(upgraded_home, tmp_path / "home"))


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        # Undated, so it counts as published when crawled: digests carry only fresh items (issue 16).
        running.routes["/feed"] = Route(
            rss(("c1", "Kubernetes operators in Python", "A guide to kopf."), published=None)
        )
        yield running


def run_json(home: Path, *args: str, child: bool = False) -> object:
    done = digest(home, *args, "--json", child=child)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_pipeline_runs_from_the_command_line(home: Path, server: FeedServer) -> None:
    added = run_json(
        home, "feeds", "add", server.url("/feed"), "--kind", "blog", "--every", "30m", child=True
    )
    # Subscribed before the crawl: the item is then stored inside the first window on the real clock, even
    # when the commands straddle the hour on a loaded machine (the window opens at the slot before the
    # subscription, and an item stored before that slot is not new to this reader).
    subscribed = run_json(
        home,
        "subscribe",
        "reader@example.com",
        "--skill",
        "k8s",
        "--skill",
        "python",
        "--cadence",
        "hourly",
        "--timezone",
        "UTC",
        "--confirmed",
        child=True,
    )
    crawled = run_json(home, "crawl", child=True)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    sent = run_json(home, "send-due", "--now", later, child=True)
    again = run_json(home, "send-due", "--now", later, child=True)
    deliveries = run_json(home, "deliveries", "list", child=True)

    assert isinstance(added, dict) and added["interval"] == 1800 and added["kind"] == "blog"
    assert isinstance(crawled, dict)
    assert crawled["totals"]["new"] == 1
    assert set(crawled["feeds"][0]) == {"id", "url", "status", "http_status", "new", "updated", "error"}
    assert isinstance(subscribed, dict) and subscribed["skills"] == ["Kubernetes", "Python"]
    assert isinstance(sent, dict) and (sent["sent"], sent["skipped"], sent["failed"]) == (1, 0, 0)
    assert isinstance(again, dict) and again["sent"] == 0
    assert isinstance(deliveries, list)
    [delivery] = deliveries
    assert set(delivery) == {
        "id",
        "subscriber",
        "cadence",
        "skills",
        "window_start",
        "window_end",
        "status",
        "items",
        "message_id",
    }
    assert delivery["status"] == "sent" and len(delivery["items"]) == 1
    assert delivery["window_end"].endswith("Z")

    replayed = run_json(
        home, "replay", str(delivery["id"]), "--preview", str(home / "again.html"), child=True
    )
    assert isinstance(replayed, dict) and replayed["identical"] is True
    assert (home / "again.html").read_text().startswith("<!DOCTYPE html>")


def test_a_feed_is_added_once_and_only_over_http(home: Path, server: FeedServer) -> None:
    assert digest(home, "feeds", "add", server.url("/feed")).returncode == 0

    twice = digest(home, "feeds", "add", server.url("/feed"))
    local_file = digest(home, "feeds", "add", "file:///etc/passwd")

    assert twice.returncode == 1 and "already" in twice.stderr
    assert local_file.returncode == 1 and "only http" in local_file.stderr


def test_skills_resolve_by_name_alias_and_id_and_unknown_ones_get_suggestions(home: Path) -> None:
    done = digest(home, "skills", "show", "python3", "K8s", "Large language models", "pythn", "--json")

    rows = json.loads(done.stdout)
    assert done.returncode == 1
    assert [row["name"] for row in rows[:3]] == ["Python", "Kubernetes", "Large language model"]
    assert rows[3]["id"] is None and "suggestions" in rows[3]
    by_id = json.loads(digest(home, "skills", "show", rows[0]["id"], "--json").stdout)
    assert by_id[0]["name"] == "Python"


def test_tag_prints_the_documented_fields(home: Path) -> None:
    done = digest(
        home, "tag", "--title", "Serving LLMs on Kubernetes", "--text", "We use Python 3.12.", "--json"
    )

    tags = {tag["name"]: tag for tag in json.loads(done.stdout)}
    assert {"Large language model", "Kubernetes", "Python"} <= set(tags)
    assert set(tags["Python"]) == {"id", "name", "category", "matched", "in_title", "count", "score"}
    assert tags["Kubernetes"]["in_title"] is True and tags["Python"]["in_title"] is False


def test_taxonomy_stats_and_skill_search_print_the_documented_fields(home: Path) -> None:
    stats = run_json(home, "taxonomy", "stats")
    found = run_json(home, "skills", "search", "kubernetes")

    assert isinstance(stats, dict)
    assert set(stats) == {"version", "entities", "aliases", "ambiguous", "by_source"}
    assert stats["entities"] >= 3000 and stats["aliases"] > stats["entities"] > stats["ambiguous"] > 0
    assert stats["by_source"]["onet"]["dropped"] > 0 and stats["by_source"]["simple-icons"]["kept"] > 0
    assert isinstance(found, list) and found[0]["name"] == "Kubernetes"


def test_taxonomy_audit_reports_each_kind_of_risk(home: Path) -> None:
    report = run_json(home, "taxonomy", "audit", "--limit", "3")

    assert isinstance(report, dict)
    # Every dictionary-word alias of the bundle has its rule (digest/data/senses.yaml, issue 15).
    assert report["words_without_rule"] == len(report["words_without_rule_examples"]) == 0
    assert report["shared_aliases"] > 0 and len(report["shared_alias_examples"]) == 3
    assert report["silent_skills"] == run_json(home, "taxonomy", "stats")["entities"]
    assert report["one_source_skills"] == 0


def test_tag_jsonl_writes_one_list_per_document(home: Path) -> None:
    documents = [
        {"title": "Rust 1.90 released", "text": "The Rust compiler gets faster."},
        {"title": "Quarterly results", "text": "Revenue grew."},
        {"title": "", "text": "We serve LLMs with PyTorch on Kubernetes."},
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"DIGEST_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", "tag", "--jsonl"],
        input="".join(json.dumps(d) + "\n" for d in documents),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, done.stderr
    wanted = [{"Rust"}, set(), {"PyTorch", "Kubernetes"}]
    assert all({tag["name"] for tag in line} >= want for line, want in zip(lines, wanted, strict=True))
    assert lines[1] == []


def test_retag_reports_and_a_second_run_has_nothing_left(home: Path, server: FeedServer) -> None:
    run_json(home, "feeds", "add", server.url("/feed"))
    run_json(home, "crawl")
    assert digest(home, "taxonomy", "alias", "python", "kopf").returncode == 0

    first = run_json(home, "taxonomy", "retag")
    second = run_json(home, "taxonomy", "retag")

    assert first == {"items": 1, "tags": 2}
    assert second == {"items": 0, "tags": 0}


def test_subscribe_sends_a_confirmation_unless_told_the_owner_already_agreed(home: Path) -> None:
    pending = run_json(home, "subscribe", "new@example.com", "--skill", "rust", "--cadence", "weekly")
    active = run_json(
        home, "subscribe", "ops@example.com", "--skill", "go", "--confirmed", "--timezone", "UTC"
    )
    listed = run_json(home, "subscribers", "list")
    only_active = run_json(home, "subscribers", "list", "--state", "active")

    assert isinstance(pending, dict) and pending["state"] == "pending"
    assert isinstance(active, dict) and active["state"] == "active"
    outbox = list((home / "outbox" / "new").iterdir())
    assert len(outbox) == 1 and b"new@example.com" in outbox[0].read_bytes()
    assert isinstance(listed, list) and [row["email"] for row in listed] == [
        "new@example.com",
        "ops@example.com",
    ]
    assert set(listed[0]) >= {"id", "email", "cadence", "timezone", "hour", "weekday", "skills", "state"}
    assert only_active == [active]


def test_subscribe_refuses_an_unknown_skill_and_a_hostile_address_in_one_line(home: Path) -> None:
    unknown = digest(home, "subscribe", "a@example.com", "--skill", "no-such-skill-xyz")
    hostile = digest(home, "subscribe", "a@example.com\r\nBcc: x@example.org", "--skill", "rust")

    assert unknown.returncode == 1 and "no skill called" in unknown.stderr
    assert hostile.returncode == 1 and "line breaks" in hostile.stderr
    assert "Traceback" not in unknown.stderr + hostile.stderr
