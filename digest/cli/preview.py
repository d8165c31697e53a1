"""``digest preview``: the next digest of a subscriber, rendered and shown, never sent or recorded."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from digest.cli.app import app
from digest.cli.common import JsonOption, clock, iso, out, parse_time, print_json, runtime
from digest.errors import InvalidInputError


@app.command("preview")
def preview(
    email: Annotated[str, typer.Argument(help="The subscriber's email address.")],
    cadence: Annotated[
        str | None,
        typer.Option(help="Which subscription, when the address has several (hourly, daily or weekly)."),
    ] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="Render as if it were this ISO 8601 time (default: now).")
    ] = None,
    to: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the email here: .html for the HTML part, .eml for the whole message."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Render the digest EMAIL would get next, without sending it or recording a delivery."""
    from digest.deliver import digests

    if to is not None and to.suffix not in (".html", ".eml"):
        raise InvalidInputError("--out takes a file ending in .html or .eml")
    at = parse_time(now) if now else clock()
    with runtime() as rt:
        rendered = digests.preview(rt.sessions, email, cadence, at, rt.composer, rt.delivery)
    if to is not None and to.suffix == ".eml":
        to.write_bytes(rendered.message.as_bytes())
    elif to is not None:
        to.write_text(rendered.email.html, encoding="utf-8")
    content = rendered.content
    if as_json:
        print_json(
            {
                "subscriber": content.email,
                "cadence": content.cadence,
                "window_start": iso(content.window_start),
                "window_end": iso(content.window_end),
                "subject": rendered.email.subject,
                "items": [item.item_id for section in content.sections for item in section.items],
                "more": content.more,
                "out": str(to) if to is not None else None,
            }
        )
    elif to is not None:
        # The subject is feed text: rich must not read "[red]" or ":smile:" in it as markup.
        message = f"{rendered.email.subject}: preview written to {to}"
        out.print(message, markup=False, emoji=False, highlight=False, soft_wrap=True)
    else:
        sys.stdout.write(rendered.email.text)
