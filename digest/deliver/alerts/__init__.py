"""Trend alerts: mail a subscriber when a skill's mentions rise or fall past a threshold.

A trend compares the mentions (tagged items, by ingest time) of the last ``period`` (24 hours or 7 days)
with the same-length baseline from the 4 weeks before it: the average count per period over those 4 weeks.
An alert fires when the change reaches its threshold (either way) and either count reaches its minimum, so
tiny numbers do not alert; a skill that had no mentions in the baseline and now has at least the minimum is
"new". At most one alert email per alert and UTC day: the ``alert_deliveries`` row is unique on (alert,
day), carries its manifest (the figures and item ids) and goes through the outbox like a digest, so alerts
have the digests' guarantees: exactly once, events, retries with the attempt cap, bounce counting,
replayable, one-click unsubscribe.

    check:  active alerts -> trend per (skill, period), computed once per check -> delivery row per
            alert that fires (unique per day) -> with those whose task may be lost, the ids to enqueue
    send:   outbox.claim (pending -> sending) -> render from the manifest -> store subject, hash,
            Message-ID -> outbox.transmit -> sent | failed | pending for a retry; or skipped (the alert
            was turned off, or its subscriber is no longer active)

    trends.py  a skill's trend over a period against its baseline, and whether an alert fires on it
    manage.py  add, remove and list a subscriber's alerts
    send.py    check and send (above), and render a sent one again from its manifest
    run.py     one alert now, for the platform API (issue 19): preview it (nothing stored) or open
               today's delivery at once and send it (the same row ``check`` would open, so still once)
"""

from __future__ import annotations

from digest.deliver.alerts.manage import AlertInfo, add, of_subscriber, remove
from digest.deliver.alerts.run import AlertPreview, open_now, preview
from digest.deliver.alerts.send import ALERT_OFF, RenderedAlert, alert_message_id, check, render, send
from digest.deliver.alerts.trends import PERIODS, Trend, fires, measure

__all__ = [
    "ALERT_OFF",
    "PERIODS",
    "AlertInfo",
    "AlertPreview",
    "RenderedAlert",
    "Trend",
    "add",
    "alert_message_id",
    "check",
    "fires",
    "measure",
    "of_subscriber",
    "open_now",
    "preview",
    "remove",
    "render",
    "send",
]
