"""Ingest: what the world writes, fetched, parsed, stored and tagged with skills.

    sources (which feeds are due: pure)
      -> fetch/ (conditional GET, limits, private-address guard)
      -> parse/ (RSS, Atom, JSON Feed, normalised entries)
      -> store (upsert, de-duplicate, per-feed outcome)
      -> match/ (skill entities from the taxonomy)

orchestrated by ``crawl``; ``taxonomy`` loads and versions the skill entities and ``skills`` finds them by
what people type; ``catalog`` and ``opml`` manage the list of feeds.
"""
