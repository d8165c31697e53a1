"""Digests/s of `digest worker` on the embedded default beside `digest send-due` on the same data (issue 18).

The embedded default: SQLite, kombu's filesystem broker (no server) and a Maildir. Two fresh homes are
filled alike (``--subscribers`` subscribers with 1-5 of 50 skills, hourly, daily or weekly in eight time
zones, all due at one ``now``; ``--items`` synthetic items tagged in the last hour, the generator of
``bench/digests.py``).

Baseline, same run: ``digest send-due --now NOW`` on the first home, a process of its own, timed from its
start to its exit (dispatch and every send in one loop).

Worker path: ``digest worker`` with its defaults on the second home; once it is ready, one
``dispatch_tick`` goes into the broker, and the time runs from it until every delivery is finished
(sent or skipped) in the database. Target: the worker path at >= 0.8 of the baseline's rate.

``--rounds`` pairs of runs, each on fresh homes: on two shared cores the load of other work moves a single
pair by tens of percent, so the median ratio is the figure. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bench.digests import NOW, WANTED_SKILLS, _items, _subscribers
from digest import db
from digest.cli.bootstrap import upgrade_all
from digest.config import Settings, load_settings, settings_env
from digest.ingest.taxonomy import loaded_version
from digest.models import Delivery, Item, Skill, Source, Tag
from digest.ops import processes
from digest.records import DeliveryStatus
from digest.runtime import Runtime
from digest.tasks import create_celery

FINISHED = (DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED)
STALL = 60.0


def main() -> None:
    """Fill two homes a round, time send-due on one and the worker on the other; the ratios and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=300)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs; the median ratio counts")
    parser.add_argument("--pool", help="the worker's --pool (default: the command's)")
    parser.add_argument("--concurrency", type=int, help="the worker's --concurrency (default: the command's)")
    args = parser.parse_args()
    options = [*(["--pool", args.pool] if args.pool else [])]
    options += ["--concurrency", str(args.concurrency)] if args.concurrency else []
    rounds = [_round(args.subscribers, args.items, options) for _ in range(args.rounds)]
    ratio = statistics.median(each["ratio_to_send_due"] for each in rounds)
    print(f"median ratio {ratio:6.2f}            (target >= 0.8)")
    print(
        json.dumps(
            {
                "subscribers": args.subscribers,
                "items": args.items,
                "worker_options": " ".join(options),
                "median_ratio_to_send_due": ratio,
                "rounds": rounds,
            }
        )
    )


def _round(subscribers: int, items: int, options: list[str]) -> dict[str, Any]:
    """One pair of runs, send-due then the worker, each on a fresh home filled alike."""
    root = Path(tempfile.mkdtemp(prefix="digest-embedded-"))
    baseline_home, worker_home = _settings(root / "send-due"), _settings(root / "worker")
    for settings in (baseline_home, worker_home):
        _populate(settings, subscribers, items)
    base_seconds, base_sent = _send_due(baseline_home)
    base_rate = base_sent / base_seconds
    print(f"send-due     {base_rate:6.1f} digests/s ({base_sent} sent in {base_seconds:.1f} s)")
    seconds, counts = _worker(worker_home, subscribers, options)
    sent = counts.get(DeliveryStatus.SENT, 0)
    rate = sent / seconds
    mailed = _mailed(worker_home)
    print(f"worker       {rate:6.1f} digests/s ({sent} sent in {seconds:.1f} s; statuses {counts})")
    print(f"ratio        {rate / base_rate:6.2f}            ({mailed} messages in the Maildir)")
    shutil.rmtree(root)
    return {
        "send_due_seconds": round(base_seconds, 2),
        "send_due_digests_per_s": round(base_rate, 1),
        "worker_seconds": round(seconds, 2),
        "worker_digests_per_s": round(rate, 1),
        "ratio_to_send_due": round(rate / base_rate, 3),
        "worker_statuses": counts,
        "maildir_messages": mailed,
    }


def _settings(home: Path) -> Settings:
    return load_settings(
        home=home,
        secret_key="bench-secret-key-0123456789abcdefghijk",
        base_url="https://skills.example",
        from_address="digest@skills.example",
    )


def _populate(settings: Settings, subscribers: int, items: int) -> None:
    """The schema, the taxonomy, 60 sources, tagged items and due subscribers; the same in every home."""
    rng = random.Random(18)
    rt = Runtime(settings)
    upgrade_all(rt, NOW)
    with db.transaction(rt.sessions) as session:
        version = loaded_version(session) or "bench"
        by_name = dict(
            session.execute(select(Skill.name, Skill.id).where(Skill.merged_into.is_(None))).tuples().all()
        )
        chosen = [by_name[name] for name in WANTED_SKILLS if name in by_name]
        chosen += rng.sample(sorted(set(by_name.values()) - set(chosen)), 50 - len(chosen))
        names = {skill_id: name for name, skill_id in by_name.items()}
        session.execute(
            insert(Source),
            [
                {
                    "id": number + 1,
                    "url": f"https://news{number}.example/feed",
                    "name": f"Source {number}",
                    "kind": "news",
                    "next_fetch_at": NOW.replace(year=NOW.year + 1),
                    "created_at": NOW.replace(year=NOW.year - 1),
                }
                for number in range(60)
            ],
        )
        item_rows, tag_rows = _items(items, chosen, names, version, rng)
        session.execute(insert(Item), item_rows)
        session.execute(insert(Tag), tag_rows)
        _subscribers(session, range(1, subscribers + 1), chosen, rng)
    rt.close()


def _send_due(settings: Settings) -> tuple[float, int]:
    """Seconds of one ``digest send-due`` process (start to exit) and the digests it sent."""
    env = {**_bare_env(), **settings_env(settings)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", "send-due", "--now", NOW.isoformat(), "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    return seconds, int(json.loads(done.stdout)["sent"])


def _worker(settings: Settings, expected: int, options: list[str]) -> tuple[float, dict[str, int]]:
    """Seconds from the tick until ``expected`` deliveries are finished, through ``digest worker``."""
    command = [sys.executable, "-m", "digest.cli", "worker", "--log-level", "warning", *options]
    worker = processes.start(command, settings, quiet=True)
    rt = Runtime(settings)
    try:
        _wait_for_worker(settings)
        started = time.perf_counter()
        create_celery(settings).send_task("digest.dispatch_tick", args=[NOW.isoformat()], queue="digest")
        counts = _wait_finished(rt, expected)
        seconds = time.perf_counter() - started
    finally:
        processes.stop([worker])
        rt.close()
    return seconds, counts


def _wait_for_worker(settings: Settings) -> None:
    app = create_celery(settings)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(timeout=1.0):
            return
    raise SystemExit("the worker did not answer a ping within 60 s")


def _wait_finished(rt: Runtime, expected: int) -> dict[str, int]:
    """Poll the deliveries until ``expected`` are finished (or nothing moves for a minute)."""
    last, last_change = -1, time.monotonic()
    while True:
        counts = _statuses(rt)
        finished = sum(counts.get(status, 0) for status in FINISHED)
        if finished >= expected:
            return counts
        if finished != last:
            last, last_change = finished, time.monotonic()
        elif time.monotonic() - last_change > STALL:
            print(f"stalled at {finished} of {expected} deliveries")
            return counts
        time.sleep(0.02)


def _statuses(rt: Runtime) -> dict[str, int]:
    with db.transaction(rt.sessions) as session:
        rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).tuples()
        return dict(rows.all())


def _mailed(settings: Settings) -> int:
    return sum(1 for _ in (settings.home / "outbox" / "new").iterdir())


def _bare_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("DIGEST_")}


if __name__ == "__main__":
    main()
