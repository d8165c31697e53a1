"""What every command shares: consoles, the runtime, JSON and time helpers, progress bars.

Light on purpose: every command module imports it, and ``digest --help`` must start in a fraction of a
second (issue 17), so the settings, the runtime and the progress bars are imported where they are used.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from digest.errors import InvalidInputError
from digest.records import iso as iso  # the CLI's modules print times with it
from digest.records import relative as relative  # and say them in words

if TYPE_CHECKING:
    from rich.progress import Progress

    from digest.config import Settings
    from digest.runtime import Runtime

# Everything printed is data (skill ids like "[c3f…]", titles with ":smile:"): Rich reads no markup or emoji
# codes in it, so nothing is swallowed (issue 17, FIELD-NOTES). Colour goes through ``Text`` styles.
out = Console(markup=False, emoji=False)
err = Console(stderr=True, markup=False, emoji=False)
T = TypeVar("T")
R = TypeVar("R")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def clock() -> datetime:
    return datetime.now(UTC)


@contextmanager
def runtime(*, schema: bool = True, **overrides: Any) -> Iterator[Runtime]:
    from digest.config import load_settings
    from digest.runtime import Runtime

    rt = Runtime(load_settings(**overrides))
    try:
        if schema:
            rt.require_schema()
        yield rt
    finally:
        rt.close()


def checked_settings() -> Settings:
    """Settings of a process that will open the database itself: refuse early if the schema is missing."""
    with runtime() as rt:
        return rt.settings


# Larger than any subscription list or taxonomy a person would import; /dev/zero must not fill the memory.
MAX_INPUT_FILE = 64 * 1024 * 1024


def read_input(path: Path, limit: int = MAX_INPUT_FILE) -> bytes:
    """A file given to a command, whole; ``InvalidInputError`` in one line if unreadable or huge."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InvalidInputError(f"{path} is larger than {limit // (1024 * 1024)} MiB")
    return data


def alarm(label: str, rest: str = "") -> Text:
    """``label`` in red followed by ``rest`` as it is: the one styled line the consoles print."""
    return Text.assemble((label, "red"), rest)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def table(
    *columns: str, text: Sequence[str] = (), right: Sequence[str] = (), title: str | None = None
) -> Table:
    """A table that fits 80 columns and widens with the terminal (issue 17).

    No frame, two spaces between columns. Data columns (ids, addresses, statuses, counts) never wrap, so a
    value survives whole and headers stay unbroken; only the free ``text`` columns (names, errors, skill
    lists) wrap to make room (``fit``). ``right`` columns are numbers.
    """
    grid = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for column in columns:
        free = column in text
        grid.add_column(
            column,
            no_wrap=not free,
            overflow="fold" if free else "ellipsis",
            justify="right" if column in right else "left",
        )
    return grid


# Free text columns keep at least this many characters when the data columns leave little room.
MIN_TEXT = 8


def fit(grid: Table) -> Table:
    """``grid`` sized for the terminal: the data columns at their full width, the free text columns
    sharing the rest in proportion to their longest cell. When even the data cannot fit, every column
    folds instead: characters wrap onto the next line, none is lost to an ellipsis.
    """
    columns = grid.columns
    natural = [
        max([cell_len(str(column.header)), *(cell_len(str(cell)) for cell in column.cells)])
        for column in columns
    ]
    free = [index for index, column in enumerate(columns) if not column.no_wrap]
    room = out.width - 2 * (len(columns) - 1) - sum(n for i, n in enumerate(natural) if i not in free)
    wanted = sum(natural[index] for index in free)
    if wanted <= room:
        return grid
    if room < MIN_TEXT * len(free) or not free:
        for column in columns:
            column.no_wrap, column.overflow = False, "fold"
        return grid
    widths = {index: min(natural[index], MIN_TEXT) for index in free}
    left = room - sum(widths.values())
    extra = {index: natural[index] - widths[index] for index in free}
    for index in free:
        columns[index].width = widths[index] + extra[index] * left // max(1, sum(extra.values()))
    return grid


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise InvalidInputError(f"{text!r} has no UTC offset; write it like 2026-11-29T08:00:00Z")
    return value.astimezone(UTC)


def progress() -> Progress:
    """A progress bar on stderr that disappears when done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def each(items: Sequence[T], label: str, quiet: bool, work: Callable[[T], R], *, threads: int = 1) -> list[R]:
    """``work`` on every item (on ``threads`` threads), with a progress bar unless ``quiet``.

    Results come in completion order.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    results: list[R] = []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [pool.submit(work, item) for item in items]
        if quiet or len(items) < 2:
            return [future.result() for future in as_completed(futures)]
        with progress() as bar:
            task = bar.add_task(label, total=len(items))
            for future in as_completed(futures):
                results.append(future.result())
                bar.advance(task)
    return results
