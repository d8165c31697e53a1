"""Issue 17: /docs works offline and its schema separates the public API (/api, /api/v1, the skill feeds) from
the HTML pages and the admin, in sections in that order."""

from __future__ import annotations

import re

import httpx

PUBLIC = ["platform API v1", "api", "stream", "webhooks"]


def operations(client: httpx.Client) -> list[tuple[str, str, list[str]]]:
    schema = client.get("/openapi.json").json()
    return [
        (path, method, operation.get("tags", []))
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


def test_the_schema_lists_the_public_api_first_then_pages_then_admin(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()

    assert [tag["name"] for tag in schema["tags"]] == [*PUBLIC, "pages", "admin"]
    assert "public API" in schema["info"]["description"]


def test_every_operation_is_in_exactly_one_section_by_what_it_is(client: httpx.Client) -> None:
    found = operations(client)

    assert len(found) > 40
    for path, method, tags in found:
        assert len(tags) == 1, (path, method, tags)
        [tag] = tags
        if path.startswith("/api/v1/"):
            assert tag == "platform API v1", path
        elif path.startswith("/api/"):
            assert tag in ("api", "stream"), path
        elif path.startswith("/admin"):
            assert tag == "admin", path
        elif path.startswith("/webhooks/"):
            assert tag == "webhooks", path
        elif path.endswith(("/feed.atom", "/feed.json")):
            assert tag == "stream", path
        else:
            assert tag == "pages", path
    sections = {tags[0] for _, _, tags in found}
    assert sections == {*PUBLIC, "pages", "admin"}
    assert ("/subscribe", "post", ["pages"]) in found and ("/admin/feeds", "get", ["admin"]) in found


def test_docs_render_from_local_assets_only(client: httpx.Client) -> None:
    page = client.get("/docs")

    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert page.status_code == 200 and any(source.endswith(".js") for source in sources)
    assert all(source.startswith("/") and not source.startswith("//") for source in sources), sources
    assert all(client.get(source).status_code == 200 for source in sources)
    assert 'data-openapi="/openapi.json"' in page.text
    assert "http" not in client.get("/static/docs.js").text  # nothing fetched from another site
