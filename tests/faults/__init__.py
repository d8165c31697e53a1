"""Fault drills: the distributed mode (PostgreSQL, Redis, workers, SMTP) under crashes and outages."""
