"""Skill figures: daily counts pre-aggregated from tags, and what the pages say about them.

    items ⋈ item_skills ──daily.refresh(days)──> skill_daily (skill, UTC day, source)  one row per combination
                                            └──> skill_pair_daily (skill, other, day) both directions stored
    skill_daily, skill_pair_daily ──read.skill_figures(today)──> SkillFigures     ~100 rows read, not 1M tags
                                                                 (arithmetic.summarise: pure)
    skill_daily ──ranking.skill_volumes──> ranking.IndexCache ──> /skills (skill_index) and / (top_skills)
    skill_daily ──rising.weekly_counts───> rising.RisingCache ──> / (the skills rising most this week)

Modules: ``records`` (the frozen records and window constants), ``daily`` (rebuilding the daily tables and
how far they reach), ``arithmetic`` (pure sums, changes and words), ``read`` (one skill's figures and latest
items), ``ranking`` (skills by volume) and ``rising`` (the week against the 4 before), both cached per
process by ``kept``. Import the module you need; this package re-exports nothing.

A page reads the daily tables, never the tag table (except for a skill's ten latest items by publication
date, read from the skill's tags through the index on ``item_skills (skill_id, …)``), so its figures cost the
same at a million items as at a hundred. ``daily.refresh`` rebuilds whole UTC days with ``INSERT … SELECT …
GROUP BY`` after deleting them, so running it twice, or over a day whose items moved, leaves the same rows.
Beat runs ``digest.refresh_figures`` every few minutes over ``daily.periodic_days``: yesterday, today and
the publication days of the items stored since its last run; a retag or merge changes older days, which
``digest skills refresh-figures --since DATE`` rebuilds.

Days are UTC days of ``items.published_at`` (issue 16: a 2019 post found today is not a mention of this
quarter), unlike digest windows, which are over when we first stored an item.
"""
