"""The only module that speaks HTTP: conditional GET with limits and redirect bookkeeping."""

from __future__ import annotations

import httpx

from digest import __version__
from digest.errors import FetchError
from digest.records import FetchResult

USER_AGENT = f"digest/{__version__} (+feed digest service)"
MAX_REDIRECTS = 5
ACCEPT = "application/atom+xml, application/rss+xml, application/feed+json, application/xml;q=0.9, */*;q=0.5"
# 408 and 429 mean "later"; other 4xx will not get better by themselves.
TRANSIENT_4XX = {408, 425, 429}
# Not httpx's is_redirect, which also counts 304 Not Modified.
REDIRECTS = {301, 302, 303, 307, 308}


def make_client(timeout: float) -> httpx.Client:
    """One pooled client per process. Redirects are followed by hand to tell 301/308 from 302/307."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )


def fetch(
    client: httpx.Client, url: str, *, etag: str | None, last_modified: str | None, max_bytes: int
) -> FetchResult:
    """GET ``url`` conditionally. Raises ``FetchError`` for anything that is not a usable answer."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    current, permanent = url, True
    for _ in range(MAX_REDIRECTS + 1):
        try:
            with client.stream("GET", current, headers=headers) as response:
                if response.status_code in REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(f"HTTP {response.status_code} without a Location header")
                    permanent = permanent and response.status_code in (301, 308)
                    current = str(response.url.join(location))
                    continue
                _raise_for_status(response)
                content = b"" if response.status_code == 304 else _read_capped(response, max_bytes)
                return FetchResult(
                    url=current,
                    status_code=response.status_code,
                    content=content,
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    content_type=response.headers.get("content-type", ""),
                    permanent_url=current if permanent and current != url else None,
                    headers=tuple(response.headers.items()),
                )
        except httpx.TimeoutException:
            raise FetchError(f"timed out fetching {current}") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"could not fetch {current}: {exc}") from None
    raise FetchError(f"more than {MAX_REDIRECTS} redirects from {url}")


def _raise_for_status(response: httpx.Response) -> None:
    code = response.status_code
    if code < 400 and code != 204:
        return
    retry_after = _retry_after(response.headers.get("retry-after"))
    if code == 204:
        raise FetchError("HTTP 204: the server sent no feed", status=code)
    if code == 410:
        raise FetchError("HTTP 410 Gone: the feed was removed", permanent=True, status=code)
    transient = code >= 500 or code in TRANSIENT_4XX
    raise FetchError(
        f"HTTP {code} {response.reason_phrase}".strip(),
        permanent=not transient,
        status=code,
        retry_after=retry_after,
    )


def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(
            f"feed is {declared} bytes, more than the {max_bytes} allowed", status=response.status_code
        )
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(
                f"feed is larger than the {max_bytes} bytes allowed", status=response.status_code
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None
