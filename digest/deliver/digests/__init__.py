"""Digests: open each subscription's due window, then send it once through the outbox; replay and preview.

    dispatch: due subscriptions, a batch at a time (rows locked, others skip them)
              -> cadence.window, no later than the matcher's progress -> one delivery row each
              (pending, window fixed) -> the ids to enqueue                               (dispatch.py)
    run now:  the open window of one subscription, closed at once (the platform API)     (dispatch.py)
    send:     outbox.claim (pending -> sending) -> select the window's items (or the stored manifest)
              -> compose -> store manifest -> outbox.transmit -> sent | skipped | failed,
              or pending for a retry until the attempt cap                                (send.py)
    render:   a past delivery from its manifest and archived templates, or the preview of the next
              one, over the same window the dispatch opens                               (render.py)
    notices:  followed skills a taxonomy change merged or dropped, shown once: marked with the
              delivery that showed them when its manifest is stored                     (notices.py)

A window is fixed when its delivery row is created and the row is unique per (subscription, window end),
so two ticks, two beats or a redelivered task never make a second digest for one slot, and the next
window starts where this one ended, so no item is lost or repeated. A dispatch closes no window the
matcher has not finished (``store.tag_horizon``), so an item ingested just before a slot is not left out
of its digest by being tagged just after. ``docs/design.md`` ("Exactly once") has the one window no SMTP
sender can close.
"""

from __future__ import annotations

from digest.deliver.digests.dispatch import dispatch_due, open_now
from digest.deliver.digests.render import Rendered, preview, render_delivery
from digest.deliver.digests.send import send_delivery

__all__ = ["Rendered", "dispatch_due", "open_now", "preview", "render_delivery", "send_delivery"]
