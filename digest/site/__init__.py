"""Site: the read side behind skill pages and the API.

    daily counts per skill, source and pair (figures, refreshed by beat)
      -> a skill's figures and the skills index (figures)
      -> a skill's items as pages, Atom and JSON Feed (stream)

Nothing here writes what ingest or deliver own; it reads their tables and keeps its own aggregates.
"""
