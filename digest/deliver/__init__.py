"""Deliver: each subscriber's due window of tagged items, ranked, rendered and sent exactly once.

    cadence (slots and the window: pure)
      -> selection (the window's items, ranked)
      -> compose (Jinja2 text + HTML, the template archive)
      -> outbox (claim with a lease, attempts, events, the attempt cap)
      -> mail (Maildir or SMTP; the envelope sender a signed VERP address, ``verp``)
      -> bounces (later: the bounce mailbox and providers' webhooks, back onto the delivery)

orchestrated by ``digests`` (dispatch, send, render) and ``alerts``; ``replay`` re-renders and resends from a
delivery's manifest; ``subscribers`` and ``signup`` manage who gets what.
"""
