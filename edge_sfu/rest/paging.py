"""Twilio's paging: ``Page`` / ``PageSize`` in, a ``meta`` object with page links out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import web

from .common import base_url, json_response
from .forms import Field, integer, string, timestamp

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_PAGE = 100_000

#: Paging parameters every list endpoint accepts (``PageToken`` is accepted and ignored:
#: ``Page`` and ``PageSize`` alone locate a page here).
PAGING_FIELDS: dict[str, Field] = {
    "Page": Field(integer(0, MAX_PAGE)),
    "PageSize": Field(integer(1, MAX_PAGE_SIZE)),
    "PageToken": Field(string(256)),
}

#: Paging plus the creation-date window, for the lists that filter on it.
DATED_PAGING_FIELDS: dict[str, Field] = {
    "DateCreatedAfter": Field(timestamp),
    "DateCreatedBefore": Field(timestamp),
    **PAGING_FIELDS,
}


def page_window(params: Mapping[str, Any]) -> tuple[int, int]:
    """``(page, page_size)`` from parsed query parameters."""
    return int(params.get("Page", 0)), int(params.get("PageSize", DEFAULT_PAGE_SIZE))


def page_body(
    request: web.Request,
    base: str,
    key: str,
    rows: Sequence[T],
    render: Callable[[T], dict[str, Any]],
    params: Mapping[str, str],
    page: int,
    page_size: int,
) -> dict[str, Any]:
    """A Twilio list page. ``rows`` holds up to ``page_size + 1`` rows: one more than the
    page tells whether a next page exists."""
    path = f"{base}{request.path}"

    def link(number: int) -> str:
        query = {**params, "PageSize": str(page_size), "Page": str(number)}
        return f"{path}?{urlencode(query)}"

    has_next = len(rows) > page_size
    return {
        key: [render(row) for row in rows[:page_size]],
        "meta": {
            "page": page,
            "page_size": page_size,
            "first_page_url": link(0),
            "previous_page_url": link(page - 1) if page > 0 else None,
            "url": link(page),
            "next_page_url": link(page + 1) if has_next else None,
            "key": key,
        },
    }


def list_response(
    request: web.Request,
    key: str,
    rows: Sequence[T],
    render: Callable[[str, T], dict[str, Any]],
    page: int,
    page_size: int,
) -> web.Response:
    """A Twilio list page as the response; ``render(base_url, row)`` renders one row and the
    page links keep the request's filters (every parameter but the paging ones)."""
    base = base_url(request)
    filters = {k: v for k, v in request.query.items() if k not in PAGING_FIELDS}
    body = page_body(
        request, base, key, rows, lambda row: render(base, row), filters, page, page_size
    )
    return json_response(body)
