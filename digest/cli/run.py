"""Database set-up, the demo, and the long-running processes (web, worker, beat, up)."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.padding import Padding
from rich.table import Table

from digest.cli.app import app, db_app
from digest.cli.common import (
    JsonOption,
    alarm,
    checked_settings,
    clock,
    err,
    out,
    print_json,
    runtime,
)
from digest.errors import InvalidInputError

if TYPE_CHECKING:
    from digest.cli.demo_report import DemoReport

LOG_LEVELS = ("debug", "info", "warning", "error")


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOption = False) -> None:
    """Apply schema migrations and load the bundled skill taxonomy (idempotent)."""
    from digest.cli import bootstrap as setup

    with runtime(schema=False) as rt:
        result = setup.upgrade_all(rt, clock())
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    loaded = (
        f"loaded ({result.entities} skills, {result.aliases} aliases)"
        if result.taxonomy_loaded
        else "up to date"
    )
    out.print(f"schema at revision {result.revision}; taxonomy {result.taxonomy_version} {loaded}")


@app.command()
def demo(as_json: JsonOption = False) -> None:
    """Run the whole pipeline on bundled feeds: crawl, tag, and email three demo subscribers."""
    from digest.cli.demo import run_demo

    # The demo runs offline: no query feeds for its subscribers' skills (issue 16).
    with runtime(schema=False, skill_sources=False) as rt:
        if as_json:
            report = run_demo(rt, clock())
            print_json(report.as_json())
            return
        with err.status("demo") as status:
            report = run_demo(rt, clock(), step=lambda text: status.update(f"demo: {text}"))
    _print_demo(report)


def _print_demo(report: DemoReport) -> None:
    """The demo's report for people: its figures, where the emails are, and what to try next (issue 17)."""
    feeds = Table(title="Feeds crawled from 127.0.0.1")
    for column in ("feed", "kind", "status", "new", "items"):
        feeds.add_column(column)
    for row in report.feeds:
        feeds.add_row(row.name, row.kind, row.status, str(row.new), str(row.items))
    out.print(feeds)
    emails = Table(title=f"Emails ({report.sent_now} sent by this run)")
    for column in ("id", "to", "cadence", "items", "subject"):
        emails.add_column(column)
    for email in report.emails:
        emails.add_row(str(email.delivery_id), email.to, email.cadence, str(email.items), email.subject)
    out.print(emails)
    out.print(
        f"{report.items} items crawled, {report.skills} skills tagged ({report.tags} tags), "
        f"{len(report.emails)} digests sent"
    )
    out.print(f"Maildir: {report.outbox}")
    for email in report.emails:
        if email.path:
            out.print(f"  {email.path}")
    if report.preview:
        out.print(f"HTML preview: {report.preview}")
    out.print()
    out.print("Next steps", style="bold")
    for step in report.next_steps:
        out.print(Padding(step.command, (0, 0, 0, 2), expand=False))
        # Wrapped inside its indent at any width, so a long URL does not run back to the margin.
        out.print(Padding(step.why, (0, 0, 0, 6), expand=False), style="dim")


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address the web app listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8000,
) -> None:
    """Run the web app, two Celery workers (one only sends mail) and beat together. Ctrl-C stops all."""
    from digest.cli import bootstrap as setup
    from digest.config import load_settings
    from digest.ops import processes

    settings = load_settings()
    with runtime(schema=False) as rt:
        setup.upgrade_all(rt, clock())
    children = [
        processes.start(processes.web_command(host, port), settings),
        processes.start(processes.worker_command(processes.WORK_QUEUES), settings),
        processes.start(processes.worker_command(processes.MAIL_QUEUES), settings),
        processes.start(processes.beat_command(), settings),
    ]
    err.print(f"web on http://{host}:{port}, workers and beat running; Ctrl-C stops them all")
    interrupted = False
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        err.print(alarm("a process exited; stopping the others"))
    except KeyboardInterrupt:
        interrupted = True
        err.print("stopping…")
    finally:
        processes.stop(children, interrupted=interrupted)


@app.command()
def web(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the web app (subscribe, manage, unsubscribe, skill pages)."""
    import uvicorn

    from digest.ops import logs
    from digest.web import create_app
    from digest.web.edge import UVICORN_OPTIONS

    settings = checked_settings()
    logs.configure()
    # log_config=None keeps uvicorn's loggers on the root handler that logs.configure set up.
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level="warning", log_config=None, **UVICORN_OPTIONS
    )


@app.command()
def worker(
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues to consume.")
    ] = "crawl,match,digest,mail",
    pool: Annotated[str, typer.Option(help="Celery pool: solo, prefork or threads.")] = "prefork",
    concurrency: Annotated[int, typer.Option(help="Processes or threads.")] = 2,
    log_level: Annotated[str, typer.Option(help="debug, info (a line per task), warning or error.")] = "info",
    metrics_port: Annotated[
        int, typer.Option(help="Serve Prometheus metrics for this worker on this port (0: none).")
    ] = 0,
    metrics_host: Annotated[str, typer.Option(help="Address of the metrics port.")] = "127.0.0.1",
) -> None:
    """Run a Celery worker on the configured broker."""
    from digest.ops import metrics, processes

    if log_level.lower() not in LOG_LEVELS:
        raise InvalidInputError(f"--log-level accepts {', '.join(LOG_LEVELS)}, not {log_level!r}")
    settings = checked_settings()
    if metrics_port:
        # Read by prometheus_client when celery imports it, in this process and in every child it forks.
        os.environ[metrics.MULTIPROCESS_VARIABLE] = str(metrics.prepare_multiprocess_folder(settings.home))
    command = processes.worker_command(
        queues.split(","),
        pool,
        concurrency,
        loglevel=log_level.upper(),
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    os.execv(command[0], command)  # noqa: S606 - replaces this process with the worker, argv is fixed


@app.command()
def beat() -> None:
    """Run Celery beat with the periodic schedules stored in the database (crawl and dispatch ticks)."""
    from celery.apps.beat import Beat

    from digest import tasks

    with runtime() as rt:
        # Fails here, in one line, when the schema is missing; ``digest.beat`` reads the schedules itself.
        home = rt.settings.home
    Beat(app=tasks.app, schedule=str(home / "celerybeat-schedule"), loglevel="WARNING").run()
