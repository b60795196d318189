"""Walking a list by its cursor links (apps/core/keyset.py), as a person clicks them."""

import html
import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

_LINK = r'<a class="page-link" rel="{rel}" href="([^"]+)"'


def link(response, rel: str) -> str | None:
    """The "Older" (`next`) or "Newer" (`prev`) link of a page, with its query string."""
    found = re.search(_LINK.format(rel=rel), response.content.decode())
    return html.unescape(found.group(1)) if found else None


def follow(client, path: str, response, rel: str):
    """Open the page a link leads to; `path` is the list's path (the link is `?…` only)."""
    href = link(response, rel)
    assert href is not None, f"no {rel} link"
    return client.get(path + href if href.startswith("?") else href)


def unbounded_counts(queries) -> list[str]:
    """The queries that COUNT rows without a LIMIT: an exact count over a table."""
    return [
        q["sql"]
        for q in queries
        if re.search(r"COUNT\(", q["sql"], re.IGNORECASE)
        and not re.search(r"\bLIMIT\b", q["sql"], re.IGNORECASE)
    ]


def capture(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return response, queries.captured_queries
