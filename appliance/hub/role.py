"""The hub role: the field room's registry, its recording, mDNS discovery and the multi-view
page.

The page (``/admin/hub``) is behind the admin session, or opened with a viewer token: an
access token of this unit for the field room (``edge-appliance token --identity viewer
--room <hub.room>``). It joins the room as a receive-only participant with the join page's
client (``/static/edge-video.js``) and polls ``/admin/hub/units`` for each unit's state.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator
from importlib import resources

from aiohttp import web

from edge_sfu.errors import SfuError
from edge_sfu.rooms import events as ev
from edge_sfu.tokens import mint_access_token, verify_access_token
from provisioning.app import ctx_of
from provisioning.mdns import UnitBrowser
from provisioning.pages.html import attr, e
from provisioning.sessions import COOKIE_NAME

from ..recording import record_everything
from ..state import DAEMON, DaemonState
from .registry import FieldUnits, unit_view

log = logging.getLogger(__name__)

FIELD_UNITS: web.AppKey[FieldUnits] = web.AppKey("appliance.field_units", FieldUnits)
#: How long the page's own token lasts (seconds); the page asks again after a reload.
VIEWER_TTL = 12 * 3600


def add_hub_pages(admin: web.Application) -> None:
    """The multi-view page and what it reads, on the admin app (each route checks the admin
    session or a viewer token itself)."""
    admin.router.add_get("/hub", _page, name="public-hub")
    admin.router.add_get("/hub/units", _units, name="public-hub-units")
    admin.router.add_get("/hub/multiview.js", _script, name="public-hub-script")
    admin.router.add_get("/hub/multiview.css", _style, name="public-hub-style")


def setup_hub(app: web.Application, state: DaemonState) -> None:
    """Follow the field room (its registry, its recording, discovery) for the daemon's life."""
    sfu = state.sfu
    assert sfu is not None
    app[FIELD_UNITS] = FieldUnits(
        sfu.rooms, state.settings.hub.room, state.settings.hub.offline_after
    )
    app.cleanup_ctx.append(_hub)


async def _hub(app: web.Application) -> AsyncIterator[None]:
    state = app[DAEMON]
    hub = state.settings.hub
    sfu = state.sfu
    assert sfu is not None
    units = app[FIELD_UNITS]
    units.start()
    pending: set[object] = set()

    def record(event: ev.RoomEvent) -> None:
        # Every field unit's tracks, one file each, as soon as the room exists.
        if isinstance(event, ev.RoomCreated) and event.room.unique_name == hub.room:
            task = app.loop.create_task(record_everything(sfu.rooms, event.room.sid))
            pending.add(task)
            task.add_done_callback(pending.discard)

    unlisten = sfu.rooms.add_listener(record) if hub.record else None
    if hub.record:
        live = sfu.rooms.live_room_by_name(hub.room)
        if live is not None:
            await record_everything(sfu.rooms, live.sid)
    browser = None
    if hub.discover and state.settings.provisioning.mdns:
        browser = UnitBrowser(lambda name, props, addrs: _seen(units, name, props, addrs))
        try:
            await browser.start()
        except OSError as exc:
            log.warning("field units cannot be discovered on the LAN: %s", exc)
            browser = None
    try:
        yield
    finally:
        if browser is not None:
            await browser.close()
        if unlisten is not None:
            unlisten()
        units.close()


def _seen(units: FieldUnits, name: str, props: dict[str, str] | None, addrs: list[str]) -> None:
    if props is None:
        units.forget_discovered(name)
    elif props.get("role") == "field":
        units.discovered(name, addrs[0] if addrs else "")


def _viewer_token(request: web.Request) -> str | None:
    """The token the page joins with: a new one for the admin session, else the viewer
    token given (query or Bearer) when it is this unit's for the field room; None: refused."""
    state = request.config_dict[DAEMON]
    sfu = state.sfu
    assert sfu is not None
    room = state.settings.hub.room
    if ctx_of(request).sessions.get(request.cookies.get(COOKIE_NAME)) is not None:
        identity = f"viewer-{secrets.token_hex(4)}"
        key = sfu.identity.signing_key
        return mint_access_token(key, sfu.identity.account_sid, identity, room=room, ttl=VIEWER_TTL)
    auth = request.headers.get("Authorization", "")
    token = auth[7:] if auth.startswith("Bearer ") else request.query.get("token", "")
    try:
        claims = verify_access_token(token, sfu.keys, sfu.identity.account_sid, room=room)
    except SfuError:
        return None
    return token if claims.room == room else None


async def _page(request: web.Request) -> web.StreamResponse:
    token = _viewer_token(request)
    if token is None:
        ctx = ctx_of(request)
        raise web.HTTPSeeOther(f"{ctx.base}/login")
    state = request.config_dict[DAEMON]
    room = state.settings.hub.room
    base = ctx_of(request).base
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(state.settings.unit.name)}: field units</title>
<link rel="stylesheet" href="{base}/hub/multiview.css">
<script type="module" src="{base}/hub/multiview.js"></script>
</head><body>
<header><h1>Field units of {e(state.settings.unit.name)}</h1>
<p id="hub-status" role="status">connecting…</p></header>
<main id="grid" data-room="{attr(room)}" data-token="{attr(token)}" data-units="{base}/hub/units">
</main>
</body></html>
"""
    return web.Response(text=html, content_type="text/html")


async def _units(request: web.Request) -> web.StreamResponse:
    if _viewer_token(request) is None:
        return web.json_response({"message": "sign in or give a viewer token"}, status=401)
    state = request.config_dict[DAEMON]
    sfu = state.sfu
    assert sfu is not None
    units = request.config_dict[FIELD_UNITS]
    room = sfu.rooms.live_room_by_name(units.room)
    recording = room is not None and sfu.recordings.is_recording(room.sid)
    rates = state.track_rates.sample()
    quality = dict(sfu.signals.network_quality)
    body = {
        "room": units.room,
        "units": [
            unit_view(u, rates=rates, quality=quality, recording=recording, rooms=sfu.rooms)
            for u in units.snapshot()
        ],
    }
    return web.Response(
        text=json.dumps(body),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


async def _script(_request: web.Request) -> web.StreamResponse:
    return web.Response(text=_asset("multiview.js"), content_type="text/javascript")


async def _style(_request: web.Request) -> web.StreamResponse:
    return web.Response(text=_asset("multiview.css"), content_type="text/css")
