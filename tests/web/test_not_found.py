"""Issue 17: an unknown address is an HTML page with the skill search, except under /api/, where machines
read the answer: JSON there, and an RFC 9457 problem under /api/v1."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("path", ["/nowhere", "/skills/python/nowhere", "/manage", "/static/nosuch.css"])
def test_an_unknown_page_is_a_404_page_with_the_search(client: httpx.Client, path: str) -> None:
    page = client.get(path)

    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "No page at this address" in page.text
    assert '<form method="get" action="/search" role="search"' in page.text and 'name="q"' in page.text


def test_an_unknown_api_path_stays_json(client: httpx.Client) -> None:
    answer = client.get("/api/nowhere")

    assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}


def test_an_unknown_platform_path_stays_a_problem(client: httpx.Client) -> None:
    answer = client.get("/api/v1/nowhere")

    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == 404


def test_a_wrong_method_on_a_page_is_not_a_404_page(client: httpx.Client) -> None:
    answer = client.delete("/subscribe")

    assert answer.status_code == 405 and "No page at this address" not in answer.text
