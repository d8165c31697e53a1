"""Structured logs: one event per line, with the ids of the work in hand bound to every line.

Lines are JSON when stderr is not a terminal (containers, service units, the distributed mode: what a log
shipper reads) and a readable console when a person is watching. Every stdlib logger (celery, uvicorn,
alembic, ours) goes through the same processors, so celery's own error lines carry the bound ids too.

In a worker, ``task_prerun`` binds ``task_id``, ``task`` and the ids among the task's arguments
(``source_id``, ``delivery_id``) to structlog's context variables, which follow the task into any thread of
the threads pool; ``task_postrun`` logs one ``task done`` line (state, duration, result) and unbinds them.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
from typing import Any, TextIO

import structlog
from celery import signals

# Task arguments worth a field on every line the task logs: they lead to the row in the database.
BOUND_ARGUMENTS = ("source_id", "delivery_id")
# Celery logs "Task ... succeeded" at INFO for each task; ``task done`` says the same as fields.
QUIET_LOGGERS = ("celery.app.trace",)

logger = structlog.get_logger("digest.tasks")
_started: dict[str, float] = {}


def configure(
    level: int | str = logging.INFO, *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Send structlog's events and the stdlib's records to one handler on ``stream`` (stderr).

    ``json`` None: JSON lines unless ``stream`` is a terminal.
    """
    stream = stream or sys.stderr
    as_json = not stream.isatty() if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # The console renderer prints tracebacks itself; JSON needs them as a string field.
    rendering: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if as_json
        else [structlog.dev.ConsoleRenderer()]
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def bound_ids(function: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """The ``BOUND_ARGUMENTS`` among a call's arguments, by parameter name."""
    try:
        call = inspect.signature(function).bind_partial(*(args or ()), **(kwargs or {}))
    except TypeError:
        return {}
    return {name: call.arguments[name] for name in BOUND_ARGUMENTS if name in call.arguments}


def connect_celery() -> None:
    """Configure logging in celery's processes (worker, beat) and bind each task's ids to its lines."""
    signals.setup_logging.connect(_setup_logging, weak=False, dispatch_uid="digest.logs")
    signals.task_prerun.connect(_bind_task, weak=False, dispatch_uid="digest.logs")
    signals.task_postrun.connect(_task_done, weak=False, dispatch_uid="digest.logs")


def _setup_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # Connected, this replaces celery's own set-up, which would put its formatter on the root logger.
    configure(loglevel or logging.WARNING)


def _bind_task(task_id: str, task: Any, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        task_id=task_id, task=task.name, **bound_ids(task.run, args, kwargs)
    )
    _started[task_id] = time.perf_counter()


def _task_done(task_id: str, retval: Any = None, state: str | None = None, **_: Any) -> None:
    started = _started.pop(task_id, None)
    took = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
    if state == "SUCCESS":
        logger.info("task done", state=state, duration_ms=took, result=retval)
    else:
        logger.warning("task done", state=state, duration_ms=took, error=str(retval))
    structlog.contextvars.clear_contextvars()
