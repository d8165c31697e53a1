"""Issue 17: skill autocomplete on the signup form, from the taxonomy: ``/skills/suggest?q=`` answers a few
names as JSON (cacheable), bad input is a 400 in JSON, and the form's ``<datalist>`` starts with the most
popular skills so it helps without script too."""

from __future__ import annotations

import re

import httpx
import pytest


def test_suggest_answers_the_skills_a_start_of_name_finds(client: httpx.Client) -> None:
    answer = client.get("/skills/suggest", params={"q": "  py "})

    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "public, max-age=3600"
    found = answer.json()
    assert found["q"] == "py"
    names = [skill["name"] for skill in found["skills"]]
    assert {"Python", "PyTorch"} <= set(names)
    assert all(set(skill) == {"name", "slug", "matched"} for skill in found["skills"])


def test_suggest_finds_aliases_and_close_spellings_and_keeps_to_the_limit(client: httpx.Client) -> None:
    by_alias = client.get("/skills/suggest", params={"q": "golang"}).json()
    typo = client.get("/skills/suggest", params={"q": "kubernets"}).json()
    one = client.get("/skills/suggest", params={"q": "a", "limit": "1"}).json()

    assert by_alias["skills"][0]["name"] == "Go" and by_alias["skills"][0]["matched"] == "Golang"
    assert [skill["name"] for skill in typo["skills"]] == ["Kubernetes"]
    assert len(one["skills"]) == 1


def test_suggest_of_nothing_known_is_an_empty_list(client: httpx.Client) -> None:
    assert client.get("/skills/suggest", params={"q": "zzzzqqq"}).json() == {"q": "zzzzqqq", "skills": []}


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "give q"),
        ({"q": "   "}, "give q"),
        ({"q": "x" * 101}, "longer than 100"),
        ({"q": "py", "limit": "0"}, "limit must be"),
        ({"q": "py", "limit": "21"}, "limit must be"),
        ({"q": "py", "limit": "1e3"}, "limit must be"),
        ({"q": "py", "limit": "١"}, "limit must be"),
    ],
)
def test_bad_suggest_input_is_a_400_in_json(client: httpx.Client, params: dict[str, str], words: str) -> None:
    answer = client.get("/skills/suggest", params=params)

    assert answer.status_code == 400 and answer.headers["content-type"] == "application/json"
    assert words in answer.json()["detail"]


def test_the_suggest_route_does_not_hide_skill_pages(client: httpx.Client) -> None:
    assert client.get("/skills/python").status_code == 200


def test_the_signup_form_offers_popular_skills_in_a_datalist_wired_to_suggest(client: httpx.Client) -> None:
    page = client.get("/subscribe").text

    field = re.search(r'<input id="more"[^>]*>', page)
    assert field and 'list="skill-names"' in field[0] and 'data-suggest="/skills/suggest"' in field[0]
    offered = re.search(r'<datalist id="skill-names">(.*?)</datalist>', page, re.S)
    assert offered and 'value="Python"' in offered[1]
    assert '<script src="/static/forms.js"></script>' in page
