"""Child processes: a Celery worker, beat and the web server, started with the parent's settings.

Used by ``digest up`` (all three), ``digest demo`` (a worker) and the tests; Ctrl-C or SIGTERM stops them
all, politely first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from digest.config import Settings, settings_env

STOP_GRACE = 15.0
INTERRUPT_GRACE = 10.0
# The queues of ``digest.tasks`` (not imported here: importing it configures Celery from the environment).
# ``digest up`` gives sending a worker of its own, so a slow SMTP server never holds up crawling or the tick.
ALL_QUEUES = ("crawl", "match", "digest", "mail")
MAIL_QUEUES = ("mail",)
WORK_QUEUES = ("crawl", "match", "digest")


def worker_command(
    queues: Sequence[str] = ALL_QUEUES,
    pool: str = "solo",
    concurrency: int = 1,
    *,
    loglevel: str = "WARNING",
    metrics_port: int = 0,
    metrics_host: str = "127.0.0.1",
) -> list[str]:
    """argv of a Celery worker for this package (every queue unless told); ``metrics_port`` 0: no metrics."""
    metrics = ["--metrics-port", str(metrics_port), "--metrics-host", metrics_host] if metrics_port else []
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "digest.tasks",
        "worker",
        "-P",
        pool,
        "-c",
        str(concurrency),
        "-Q",
        ",".join(queues),
        "--without-gossip",
        "--without-mingle",
        "-l",
        loglevel,
        *metrics,
    ]


def beat_command() -> list[str]:
    """argv of Celery beat on the schedules stored in the database."""
    return [sys.executable, "-m", "digest.cli", "beat"]


def web_command(host: str, port: int) -> list[str]:
    """argv of the web server."""
    return [sys.executable, "-m", "digest.cli", "web", "--host", host, "--port", str(port)]


def start(command: Sequence[str], settings: Settings, *, quiet: bool = False) -> subprocess.Popen[bytes]:
    """Start ``command`` with the environment that carries ``settings``."""
    env = {**os.environ, **settings_env(settings)}
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(list(command), env=env, stdout=output, stderr=output)


def stop(
    processes: Sequence[subprocess.Popen[bytes]], grace: float = STOP_GRACE, *, interrupted: bool = False
) -> None:
    """SIGTERM every process (Celery's warm shutdown), then SIGKILL what is left after ``grace`` seconds.

    ``interrupted``: a terminal's Ctrl-C already sent SIGINT to the whole process group, so the children are
    shutting down; a second signal in the middle of that makes beat print a traceback, so give them a
    moment first and signal only those still running.
    """
    if interrupted:
        deadline = time.monotonic() + INTERRUPT_GRACE
        while time.monotonic() < deadline and any(process.poll() is None for process in processes):
            time.sleep(0.1)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
