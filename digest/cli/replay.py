"""Replays: re-render a past digest, send a copy, resend it, or resend every failed one of an outage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from digest.cli.app import app
from digest.cli.common import JsonOption, clock, each, out, parse_time, print_json, runtime
from digest.errors import AlreadyResentError, ErasedError, InvalidInputError, PrunedError
from digest.records import DeliveryStatus

if TYPE_CHECKING:
    from digest.deliver import replay


@app.command("replay")
def replay_command(
    delivery_id: Annotated[int | None, typer.Argument(help="The delivery to replay.")] = None,
    preview: Annotated[
        Path | None,
        typer.Option(help="Re-render into this file (.html or .eml) and compare with what was sent."),
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Send a copy to this address (an admin).")] = None,
    resend: Annotated[
        bool, typer.Option("--resend", help="Send it to its subscriber again, marked as a replay.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Resend even if it was resent before.")] = False,
    status: Annotated[
        str | None, typer.Option(help="Bulk: resend every delivery with this status (failed).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Bulk: failed at or after this ISO 8601 time.")] = None,
    until: Annotated[str | None, typer.Option(help="Bulk: failed before this ISO 8601 time.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Replay a past digest exactly as it was sent: re-render it, send a copy, resend it, or resend every
    failed delivery of an outage (idempotent when run again)."""
    from digest.deliver import replay
    from digest.ops import audit

    if status is not None:
        if delivery_id is not None or preview or to or resend:
            raise InvalidInputError(
                "--status replays in bulk: give no DELIVERY_ID, --preview, --to or --resend"
            )
        _replay_bulk(status, since, until, as_json)
        return
    if delivery_id is None:
        raise InvalidInputError("name a DELIVERY_ID, or replay in bulk with --status failed --since T")
    if sum((preview is not None, to is not None, resend)) != 1:
        raise InvalidInputError("choose one of --preview FILE, --to ADDRESS or --resend")
    try:
        if preview is not None:
            _replay_preview(delivery_id, preview, as_json)
            return
        with runtime() as rt:
            if to is not None:
                outcome = replay.send_copy(rt, delivery_id, to, audit.cli_actor(), clock())
            else:
                outcome = replay.resend(rt, delivery_id, audit.cli_actor(), clock(), force=force)
    except AlreadyResentError as exc:
        raise AlreadyResentError(f"{exc}; --force sends it again") from None
    except (ErasedError, PrunedError) as exc:
        # Issue 14: an erased delivery is a status, not a failure (exit 0, one line); issue 19: so is a
        # delivery retention deleted ("pruned on DATE").
        if as_json:
            status = "erased" if isinstance(exc, ErasedError) else "pruned"
            print_json({"delivery": delivery_id, "status": status, "detail": str(exc)})
        else:
            out.print(str(exc))
        return
    row = _replay_json(outcome)
    if as_json:
        print_json(row)
    else:
        verb = "sent" if outcome.status == DeliveryStatus.SENT else f"FAILED ({outcome.error})"
        out.print(f"delivery {delivery_id}: {outcome.kind} to {outcome.address} {verb}, {outcome.message_id}")
    if outcome.status != DeliveryStatus.SENT:
        raise typer.Exit(1)


def _replay_preview(delivery_id: int, preview: Path, as_json: bool) -> None:
    from digest.deliver import compare, digests

    if preview.suffix not in (".html", ".eml"):
        raise InvalidInputError("--preview takes a file ending in .html or .eml")
    with runtime() as rt:
        rendered = digests.render_delivery(rt.sessions, delivery_id, rt.composer, rt.delivery)
    if preview.suffix == ".eml":
        preview.write_bytes(rendered.message.as_bytes())
    else:
        preview.write_text(rendered.email.html, encoding="utf-8")
    stored, email = rendered.hash_stored, rendered.email
    # With the base URL of its day put back, as the admin's delivery page compares (issue 17).
    checked = (
        compare.compare(email, stored, rendered.sent_base_url, rt.settings.base_url, None) if stored else None
    )
    row = {
        "delivery": delivery_id,
        "hash_stored": stored,
        "hash_now": email.body_hash,
        "identical": bool(checked and checked.identical),
        "out": str(preview),
    }
    if as_json:
        print_json(row)
    else:
        verdict = "identical to what was sent" if row["identical"] else "DIFFERENT from what was sent"
        out.print(f"delivery {delivery_id} re-rendered to {preview}: {verdict}")


def _replay_bulk(status: str, since: str | None, until: str | None, as_json: bool) -> None:
    from digest.deliver import replay
    from digest.ops import audit

    if status != DeliveryStatus.FAILED:
        raise InvalidInputError("--status takes failed: only failed deliveries are resent in bulk")
    if since is None:
        raise InvalidInputError("--status failed needs --since T (the start of the outage)")
    with runtime() as rt:
        outcomes, skipped = replay.resend_failed(
            rt,
            parse_time(since),
            parse_time(until) if until else None,
            audit.cli_actor(),
            clock(),
            lambda todo, work: each(todo, "resending", as_json, work),
        )
    sent = sum(outcome.status == DeliveryStatus.SENT for outcome in outcomes)
    if as_json:
        print_json(
            {
                "resent": sent,
                "failed": len(outcomes) - sent,
                "already_resent": skipped,
                "replays": [_replay_json(outcome) for outcome in outcomes],
            }
        )
    else:
        out.print(f"{sent} resent, {len(outcomes) - sent} failed again, {skipped} already resent before")
    if sent != len(outcomes):
        raise typer.Exit(1)


def _replay_json(outcome: replay.ReplayOutcome) -> dict[str, Any]:
    return {
        "delivery": outcome.delivery_id,
        "replay": outcome.replay_id,
        "kind": outcome.kind,
        "to": outcome.address,
        "message_id": outcome.message_id,
        "status": outcome.status,
        "error": outcome.error,
    }
