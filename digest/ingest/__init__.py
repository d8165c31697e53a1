"""Ingest: what the world writes, fetched, parsed, stored and tagged with skills.

    sources (which feeds are due: pure)
      -> fetch/ (conditional GET, limits, private-address guard)
      -> parse/ (RSS, Atom, JSON Feed, normalised entries)
      -> store (upsert, de-duplicate, per-feed outcome)
      -> match/ (skill entities from the taxonomy)

orchestrated by ``crawl`` (one feed) and ``rounds`` (a round of many, outcomes written in batches);
``taxonomy`` loads and versions the skill entities and ``skills`` finds them by what people type;
``catalog``, ``opml`` and ``discover`` (a page's feed, by autodiscovery) manage the list of feeds.
"""
