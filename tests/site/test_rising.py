"""The rising skills' arithmetic (``site.figures.rising.rank``, pure): a week against its 4-week baseline."""

from __future__ import annotations

from digest.site.figures.arithmetic import rise_between
from digest.site.figures.rising import rank


def test_a_small_skill_tripling_and_a_big_one_up_a_third_both_rise_and_a_doubling_of_one_does_not() -> None:
    counts = {"small": (6, 8), "big": (260, 800), "tiny": (2, 4), "steady": (100, 400), "falling": (5, 40)}

    ranked = rank(counts)

    assert [skill for skill, _, _ in ranked] == ["big", "small"]
    assert ranked[0] == ("big", 260, 200.0) and ranked[1] == ("small", 6, 2.0)


def test_ties_go_to_the_busier_week_then_the_id_and_the_limit_holds() -> None:
    counts = {"b": (3, 0), "a": (3, 0), "c": (4, 4)}

    assert [skill for skill, _, _ in rank(counts)] == ["a", "b", "c"]
    assert [skill for skill, _, _ in rank(counts, limit=1)] == ["a"]
    assert rank(counts, min_recent=5) == []


def test_the_change_in_words_rounds_half_away_from_zero() -> None:
    assert rise_between(6, 2.0) == (200, "up 200% on the 4 weeks before")
    assert rise_between(3, 0.0) == (None, "new: none in the 4 weeks before")
    assert rise_between(0, 0.0) == (None, "none in either period")
    assert rise_between(201, 200.0) == (1, "up 1% on the 4 weeks before")
    assert rise_between(5, 10.0) == (-50, "down 50% on the 4 weeks before")
    assert rise_between(10, 9.99) == (0, "flat on the 4 weeks before")
