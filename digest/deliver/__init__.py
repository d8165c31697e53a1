"""Deliver: each subscriber's due window of tagged items, ranked, rendered and sent exactly once.

    cadence (slots and the window: pure)
      -> selection (the window's items, ranked)
      -> compose (Jinja2 text + HTML, the template archive)
      -> outbox (claim with a lease, attempts, events, the attempt cap)
      -> mail (Maildir or SMTP)

orchestrated by ``digests`` (dispatch, send, render) and ``alerts``; ``replay`` re-renders and resends from a
delivery's manifest; ``subscribers`` and ``signup`` manage who gets what.
"""
