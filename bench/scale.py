"""The digest dispatch of bench/digests.py with 1, then 2 worker processes: speed-up and per-stage times.

For each worker count: a fresh PostgreSQL database with ``--subscribers`` due subscribers and ``--items``
tagged items (the data of bench/digests.py), Redis as the broker, an aiosmtpd sink in its own process,
``N`` worker processes of one prefork child each on the ``digest`` and ``mail`` queues; one dispatch tick,
timed to the last message. The speed-up is the rate with 2 processes over the rate with 1 (the baseline of
this benchmark, measured in the same run).

Per-stage times come from sending a sample of the same deliveries in this process with the stages timed:
select (claim, the person, the window's rows), render (templates, CSS inlining, MIME), send (SMTP to the
sink over one connection), commit (the manifest and the result written, both commits). Ends with one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any, TypeVar

import digests as data  # bench/digests.py: the same subscribers, items and sink
from sqlalchemy import create_engine, text

from digest.cli.bootstrap import upgrade_all
from digest.config import Settings, load_settings
from digest.deliver import digests, outbox
from digest.deliver.compose import Composer
from digest.deliver.digests import send as sending
from digest.deliver.mail import SmtpMailer
from digest.ops import processes
from digest.runtime import Runtime
from digest.tasks import create_celery

T = TypeVar("T")
STAGES = ("select", "render", "send", "commit")


def main() -> None:
    """Both runs and the stage sample; the figures, then one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--sample", type=int, default=500, help="deliveries sent in-process for stage times")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    counted: Synchronized[int] = context.Value("q", 0)
    unique: Synchronized[int] = context.Value("q", 0)
    ready = context.Event()
    port = data._free_port()
    sink = context.Process(target=data.serve_sink, args=(port, counted, unique, ready), daemon=True)
    sink.start()
    ready.wait(20)
    figures: dict[str, Any] = {"subscribers": args.subscribers, "items": args.items}
    try:
        for workers in (1, 2):
            counted.value = unique.value = 0
            with database() as url:
                settings = _settings(url, port, f"run{workers}")
                rt = _prepared(settings, args)
                rate, seconds, peak_kb = _celery_run(settings, workers, args.subscribers, counted)
                rt.close()
            figures[f"workers_{workers}"] = {
                "digests_per_s": round(rate, 1),
                "seconds": round(seconds, 1),
                "messages": counted.value,
                "distinct_message_ids": unique.value,
                "peak_rss_mb": round(peak_kb / 1024, 1),
            }
            print(f"{workers} worker(s)  {rate:6.1f} digests/s ({counted.value} in {seconds:.0f} s)")
        with database() as url:
            stages = _stage_times(_settings(url, port, "stages"), args)
    finally:
        sink.terminate()
    speedup = figures["workers_2"]["digests_per_s"] / figures["workers_1"]["digests_per_s"]
    figures["speedup_2_over_1"] = round(speedup, 2)
    figures["stage_ms"] = stages
    print(
        f"speed-up     {speedup:6.2f}x      (2 worker processes over 1, {multiprocessing.cpu_count()} cores)"
    )
    print("stages       " + ", ".join(f"{name} {stages[name]:.2f} ms" for name in STAGES))
    print(json.dumps(figures))


@contextmanager
def database() -> Iterator[str]:
    """A throwaway PostgreSQL database."""
    name = f"digest_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(data.ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield data.ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _settings(url: str, port: int, run: str) -> Settings:
    # A sender domain per run, so the sink counts each run's Message-IDs apart.
    return load_settings(
        home=Path(tempfile.mkdtemp()) / "home",
        database_url=url,
        broker_url=data.REDIS_URL,
        mail_url=f"smtp://127.0.0.1:{port}",
        secret_key="bench-secret-key-0123456789abcdefghijk",
        base_url="https://skills.example",
        from_address=f"digest@{run}.skills.example",
    )


def _prepared(settings: Settings, args: argparse.Namespace) -> Runtime:
    data._flush_redis()
    rt = Runtime(settings)
    upgrade_all(rt, data.NOW)
    data.populate(rt, args.subscribers, args.items, random.Random(6))
    return rt


def _celery_run(
    settings: Settings, workers: int, expected: int, counted: Synchronized[int]
) -> tuple[float, float, int]:
    command = processes.worker_command(("digest", "mail"), pool="prefork", concurrency=1)
    started_workers = [
        processes.start([*command, "-n", f"scale{number}@%h"], settings, quiet=True)
        for number in range(workers)
    ]
    try:
        data._wait_for_worker(settings)
        started = time.perf_counter()
        create_celery(settings).send_task("digest.dispatch_tick", args=[data.NOW.isoformat()], queue="digest")
        # Peak memory of the first worker process: the second is its twin.
        peak = data._wait_for(counted, expected, started_workers[0].pid)
        seconds = time.perf_counter() - started
    finally:
        processes.stop(started_workers)
    return counted.value / seconds, seconds, peak


def _stage_times(settings: Settings, args: argparse.Namespace) -> dict[str, float]:
    """Milliseconds per digest in each stage, from ``--sample`` deliveries sent in this process."""
    small = argparse.Namespace(subscribers=args.sample, items=args.items)
    rt = _prepared(settings, small)
    spent = dict.fromkeys(STAGES, 0.0)
    mailer = SmtpMailer(
        "127.0.0.1", int(settings.mail_url.rsplit(":", 1)[1]), security="none", username=None, password=None
    )
    originals = (sending._claim, sending.message, sending._store_manifest, outbox.finish, Composer.digest)
    sending._claim = _timed(sending._claim, spent, "select")  # type: ignore[assignment]
    sending.message = _timed(sending.message, spent, "render")  # type: ignore[assignment]
    sending._store_manifest = _timed(sending._store_manifest, spent, "commit")  # type: ignore[assignment]
    outbox.finish = _timed(outbox.finish, spent, "commit")  # type: ignore[assignment]
    Composer.digest = _timed(Composer.digest, spent, "render")  # type: ignore[method-assign]
    send = _timed(mailer.send, spent, "send")
    try:
        delivery_ids = [did for batch in digests.dispatch_due(rt.sessions, data.NOW) for did in batch]
        started = time.perf_counter()
        for delivery_id in delivery_ids:
            digests.send_delivery(
                rt.sessions,
                delivery_id,
                mailer=_Mailer(send),
                composer=rt.composer,
                config=rt.delivery,
                now=data.NOW,
                cache=rt.windows,
            )
        total = time.perf_counter() - started
    finally:
        sending._claim, sending.message, sending._store_manifest, outbox.finish, Composer.digest = originals  # type: ignore[method-assign]
        mailer.close()
        rt.close()
    count = max(1, len(delivery_ids))
    # The first commit (claim, manifest) closes the transaction around the timed calls: what is left.
    spent["commit"] += total - sum(spent.values())
    return {name: round(seconds / count * 1000, 2) for name, seconds in spent.items()}


class _Mailer:
    def __init__(self, send: Callable[..., None]) -> None:
        self.send = send

    def close(self) -> None:
        """Nothing to release: the timed mailer is closed by its owner."""


def _timed(function: Callable[..., T], spent: dict[str, float], stage: str) -> Callable[..., T]:
    def timed(*args: Any, **kwargs: Any) -> T:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[stage] += time.perf_counter() - started

    return timed


if __name__ == "__main__":
    main()
