"""The recordings page: recordings and compositions, with play, download and delete."""

from __future__ import annotations

import logging
import re

from aiohttp import web

from .app import chrome_for, ctx_of, render
from .pages import media_pages
from .pages.layout import Flash

log = logging.getLogger(__name__)

_SID = re.compile(r"^(RT|CJ)[0-9a-f]{32}$")


def _page(
    request: web.Request, flashes: list[Flash] | None = None, status: int = 200
) -> web.Response:
    chrome = chrome_for(request, "recordings")
    body = media_pages.media_list(chrome, ctx_of(request).backend.list_media())
    return render(request, "Recordings", body, chrome=chrome, flashes=flashes or [], status=status)


async def recordings_get(request: web.Request) -> web.StreamResponse:
    """Recordings and compositions, newest first."""
    return _page(request)


async def recordings_delete(request: web.Request) -> web.StreamResponse:
    """Delete one file; the listing keeps the item, marked deleted."""
    form = await request.post()
    raw = form.get("sid")
    sid = raw if isinstance(raw, str) else ""
    if not _SID.fullmatch(sid) or not ctx_of(request).backend.delete_media(sid):
        return _page(request, [Flash("error", "There is no such file to delete.")], status=400)
    log.info("%s deleted on the admin page", sid)
    return _page(request, [Flash("ok", f"{sid} deleted.")])
