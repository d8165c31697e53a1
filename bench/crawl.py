"""Crawl 1,000 loopback feeds x 50 items through the real crawler; compare with bare feedparser.

Figures, all from one run:
- first crawl (fetch + parse + normalise + store, no tagging) wall time and items/s, as the ratio to
  bare ``feedparser.parse`` of the same bytes in a loop (the baseline);
- a second crawl in which every feed answers 304 (``rounds.crawl_round``, as ``digest crawl`` runs it),
  beside its own baseline: the same 1,000 conditional GETs alone on a sync ``httpx.Client`` and as many
  threads, no database (what a peer crawler such as reader does per feed);
- peak memory (max RSS) of the crawling process.
The feed server runs in another process so it does not compete for this one's interpreter lock.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import feedparser
import httpx

from digest import db
from digest.cli.feeds import PARSERS
from digest.config import load_settings
from digest.ingest import crawl, rounds
from digest.models import Source
from digest.runtime import Runtime

# A thousand real feeds live on many hosts; the whole of 127.0.0.0/8 is loopback, so twenty addresses model
# that without leaving the machine, and the per-host limit (2 at once) applies as it would.
HOSTS = tuple(f"127.0.0.{n}" for n in range(1, 21))
WORDS = [
    "kubernetes",
    "python",
    "latency",
    "cluster",
    "model",
    "inference",
    "training",
    "data",
    "pipeline",
    "storage",
    "query",
    "index",
    "cache",
    "release",
    "compiler",
    "memory",
    "network",
    "service",
    "operator",
    "rollout",
    "benchmark",
    "vector",
    "embedding",
    "scheduler",
    "shard",
    "replica",
    "consensus",
    "throughput",
    "tracing",
    "metrics",
    "gradient",
    "tokenizer",
    "transformer",
    "dataset",
    "evaluation",
]


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def summary_html(rng: random.Random) -> str:
    paragraphs = [
        f"<p>{sentence(rng, 18)} <em>{sentence(rng, 5)}</em> {sentence(rng, 14)}</p>" for _ in range(3)
    ]
    return "".join(paragraphs) + f'<p><a href="https://example.org/{rng.randrange(10**6)}">More</a></p>'


def rss_feed(number: int, items: int, rng: random.Random) -> bytes:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    entries = "".join(
        f"<item><title>{sentence(rng, 8)}</title><link>https://news{number}.example.com/{n}</link>"
        f"<guid>https://news{number}.example.com/{n}</guid>"
        f"<pubDate>{(start + timedelta(minutes=n)).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        f"<description><![CDATA[{summary_html(rng)}]]></description></item>"
        for n in range(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed {number}</title>'
        f"<link>https://news{number}.example.com/</link>{entries}</channel></rss>"
    ).encode()


def atom_feed(number: int, items: int, rng: random.Random, *, arxiv: bool) -> bytes:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    entries = []
    for n in range(items):
        ident = (
            f"http://arxiv.org/abs/2611.{number:05d}{n:02d}v1"
            if arxiv
            else f"tag:blog{number}.example.org,2026:{n}"
        )
        extra = (
            '<arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="cs.LG"/>'
            "<author><name>A. Author</name></author><author><name>B. Author</name></author>"
            if arxiv
            else "<author><name>Team</name></author>"
        )
        when = (start + timedelta(minutes=n)).isoformat()
        body = (
            f"<summary>{sentence(rng, 60)}</summary>"
            if arxiv
            else (f'<content type="html">{escape(summary_html(rng))}</content>')
        )
        entries.append(
            f"<entry><id>{ident}</id><title>{sentence(rng, 9)}</title>"
            f'<link href="{ident.replace("tag:", "https://")}"/><updated>{when}</updated>'
            f"<published>{when}</published>{extra}{body}</entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Feed {number}</title><id>urn:feed:{number}</id><updated>2026-11-01T00:00:00Z</updated>"
        + "".join(entries)
        + "</feed>"
    ).encode()


def make_feeds(count: int, items: int) -> dict[str, bytes]:
    rng = random.Random(42)
    feeds = {}
    for number in range(count):
        kind = number % 3
        if kind == 0:
            feeds[f"/f/{number}.rss"] = rss_feed(number, items, rng)
        else:
            feeds[f"/f/{number}.atom"] = atom_feed(number, items, rng, arxiv=kind == 2)
    return feeds


def serve(feeds: dict[str, bytes], ready: Any, ports: Any) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            body = feeds.get(self.path)
            etag = _etag(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    ThreadingHTTPServer.request_queue_size = 256
    servers = [ThreadingHTTPServer((host, 0), Handler) for host in HOSTS]
    for index, server in enumerate(servers):
        ports[index] = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    ready.set()
    threading.Event().wait()


def bare_items_per_second(feeds: dict[str, bytes]) -> tuple[float, int]:
    start = time.perf_counter()
    items = sum(len(feedparser.parse(body).entries) for body in feeds.values())
    return items / (time.perf_counter() - start), items


def bare_304_seconds(feeds: dict[str, bytes], bases: list[str], threads: int) -> float:
    """Seconds for the 304 round's conditional GETs alone: one sync ``httpx.Client`` on ``threads``
    threads, as a peer crawler (reader: requests on threads) makes them; no database, no limits."""
    urls = [(bases[n % len(bases)] + path, _etag(path)) for n, path in enumerate(feeds)]
    with httpx.Client(limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)) as client:
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            codes = list(pool.map(lambda pair: client.get(pair[0], headers={"If-None-Match": pair[1]}), urls))
        seconds = time.perf_counter() - started
    assert all(response.status_code == 304 for response in codes), "the bare round did not get 304s"
    return seconds


def _etag(path: str) -> str:
    # The server is a fork of this process, so its hash() of a path is the same.
    return f'"{hash(path) & 0xFFFFFFFF:x}"'


def crawl_all(rt: Runtime, now: datetime) -> tuple[float, list[crawl.CrawlOutcome]]:
    start = time.perf_counter()
    claimed = crawl.claim_due_sources(rt.sessions, now, everything=True)
    with crawl.ParserPool(PARSERS) as parse:
        outcomes = rounds.crawl_round(
            rt.sessions, rt.fetcher, claimed, now, rt.rng, parse, threads=rt.settings.crawl_threads
        )
    return time.perf_counter() - start, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    args = parser.parse_args()
    feeds = make_feeds(args.feeds, args.items)
    context = multiprocessing.get_context("fork")
    ready, ports = context.Event(), context.Array("i", len(HOSTS))
    server = context.Process(target=serve, args=(feeds, ready, ports), daemon=True)
    server.start()
    ready.wait(10)
    try:
        figures = run(feeds, [f"http://{host}:{port}" for host, port in zip(HOSTS, ports, strict=True)])
    finally:
        server.terminate()
    print(json.dumps(figures))


def run(feeds: dict[str, bytes], bases: list[str]) -> dict[str, Any]:
    bare_rate, total_items = bare_items_per_second(feeds)
    home = Path(tempfile.mkdtemp()) / "home"
    rt = Runtime(load_settings(home=home, secret_key="bench-secret-key-0123456789abcdefghijk"))
    db.upgrade(rt.engine)
    now = datetime.now(UTC)
    with db.transaction(rt.sessions) as session:
        session.add_all(
            Source(
                url=bases[n % len(bases)] + path, name=path, kind="news", next_fetch_at=now, created_at=now
            )
            for n, path in enumerate(feeds)
        )
    first_s, first = crawl_all(rt, now)
    second_s, second = crawl_all(rt, now + timedelta(minutes=1))
    bare_304_s = bare_304_seconds(feeds, bases, rt.settings.crawl_threads)
    rt.close()
    stored = sum(o.new for o in first)
    rate = stored / first_s
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The parser processes have exited by now; RUSAGE_CHILDREN holds the largest of them (and the server).
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    errors = sum(o.status == "error" for o in first) + sum(o.status == "error" for o in second)
    print(f"feeds {len(feeds)}, items {total_items}, stored {stored}, errors {errors}")
    print(f"bare feedparser.parse (baseline): {bare_rate:8.0f} items/s")
    print(
        f"first crawl:  {first_s:6.1f} s  {rate:8.0f} items/s"
        f"  = {rate / bare_rate:.2f} x baseline (target >= 1.2, issue 18)"
    )
    print(
        f"all-304 crawl: {second_s:5.2f} s for {len(second)} feeds (target <= 1.5 s, issue 18); "
        f"{sum(o.status == 'not-modified' for o in second)} not modified"
    )
    print(
        f"bare 304 GETs (baseline): {bare_304_s:5.2f} s; the all-304 crawl = {second_s / bare_304_s:.2f} x "
        "its time (claim, conditional GETs under the limits, outcomes written)"
    )
    print(f"peak memory: {peak_mb:.0f} MB crawler, {child_mb:.0f} MB largest child (target < 500 MB)")
    return {
        "feeds": len(feeds),
        "items": total_items,
        "stored": stored,
        "errors": errors,
        "bare_items_per_s": round(bare_rate),
        "first_crawl_s": round(first_s, 2),
        "first_items_per_s": round(rate),
        "ratio": round(rate / bare_rate, 3),
        "all_304_s": round(second_s, 2),
        "bare_304_s": round(bare_304_s, 2),
        "all_304_ratio": round(second_s / bare_304_s, 2),
        "peak_mb": round(peak_mb),
        "child_peak_mb": round(child_mb),
    }


if __name__ == "__main__":
    main()
