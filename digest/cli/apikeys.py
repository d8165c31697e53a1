"""API keys for the stream API (``digest apikeys create|list|revoke``); each change is audited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from digest.cli.app import app
from digest.cli.common import JsonOption, clock, iso, out, print_json, runtime

if TYPE_CHECKING:
    from digest.ops import apikeys

apikeys_app = typer.Typer(
    help="API keys: the stream API's higher rate limits, and the /api/v1 platform API by scope.",
    no_args_is_help=True,
)
app.add_typer(apikeys_app, name="apikeys")

Name = Annotated[str, typer.Argument(help="A name for the key: who or what uses it.")]
Scope = Annotated[
    list[str] | None,
    typer.Option(
        "--scope",
        help="What the key may do (repeatable): read (resolve, skills, trends), subscribe (subscriptions "
        "and alerts it makes), admin (everything). Default: read.",
    ),
]


@apikeys_app.command("create")
def apikeys_create(name: Name, scope: Scope = None, as_json: JsonOption = False) -> None:
    """Create a key and print it once: only its hash is stored, so it cannot be shown again."""
    from digest.db import transaction
    from digest.ops import apikeys, audit

    now = clock()
    with runtime() as rt, transaction(rt.sessions) as session:
        info, key = apikeys.create(session, name, now, scope or [apikeys.READ])
        arguments = {"name": info.name, "scopes": list(info.scopes)}
        audit.record(session, audit.cli_actor(), "apikey.create", arguments, now)
    if as_json:
        print_json({**_key_json(info), "key": key})
        return
    scopes = ", ".join(info.scopes)
    out.print(f"API key {info.name!r} ({scopes}; keep it now: it is not stored and cannot be shown again):")
    # Printed bare so it can be copied or piped whole.
    print(key)


@apikeys_app.command("list")
def apikeys_list(as_json: JsonOption = False) -> None:
    """List keys: name, the first characters, when created, last used and revoked (never the key)."""
    from digest.db import transaction
    from digest.ops import apikeys

    with runtime() as rt, transaction(rt.sessions) as session:
        rows = [_key_json(info) for info in apikeys.list_keys(session)]
    if as_json:
        print_json(rows)
        return
    table = Table()
    for column in ("name", "prefix", "scopes", "created", "last used", "revoked"):
        table.add_column(column, overflow="fold")
    for row in rows:
        used, revoked = row["last_used_at"] or "", row["revoked_at"] or ""
        scopes = " ".join(row["scopes"])
        table.add_row(row["name"], row["prefix"] + "…", scopes, row["created_at"], used, revoked)
    out.print(table)


@apikeys_app.command("revoke")
def apikeys_revoke(name: Name, as_json: JsonOption = False) -> None:
    """Revoke a key at once: requests with it are refused (401). Revoking twice is harmless."""
    from digest.db import transaction
    from digest.ops import apikeys, audit

    now = clock()
    with runtime() as rt, transaction(rt.sessions) as session:
        info, changed = apikeys.revoke(session, name, now)
        if changed:
            audit.record(session, audit.cli_actor(), "apikey.revoke", {"name": info.name}, now)
    if as_json:
        print_json({**_key_json(info), "changed": changed})
        return
    out.print(f"API key {info.name!r} {'revoked' if changed else 'was already revoked'}.")


def _key_json(info: apikeys.ApiKeyInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "prefix": info.prefix,
        "scopes": list(info.scopes),
        "created_at": iso(info.created_at),
        "last_used_at": iso(info.last_used_at),
        "revoked_at": iso(info.revoked_at),
    }
