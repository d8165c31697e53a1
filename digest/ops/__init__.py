"""Ops: running the service.

    run-time schedules and settings (schedules) -> the beat that reads them (beat)
    who did what (audit), API keys (apikeys), request limits (ratelimit)
    structured logs (logs), Prometheus metrics (metrics), child processes (processes)

The lowest wing: ingest and deliver read its settings and count into its metrics; it imports only the base.
"""
