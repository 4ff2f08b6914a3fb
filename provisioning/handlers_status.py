"""Handlers of the status page's operator tools and of invite revocation.

Reads answer JSON for ``status_tools.js`` (the page renders every value as text). Actions are
plain form posts behind the same session and CSRF checks as every admin form; a script that
asks for JSON (``Accept: application/json``) gets ``{"ok", "message"}``, a plain form gets
the page back with the outcome at the top.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict

from aiohttp import web

from .app import chrome_for, ctx_of, render
from .backend import LOG_LEVELS, SNAPSHOT_FORMATS
from .pages import admin_pages, status_tools
from .pages.layout import Flash

log = logging.getLogger(__name__)
#: Room and participant SIDs, invite ids: what the pages send back, and nothing else.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_LOG_LINES = 500


def _id(form: Mapping[str, object], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) and _ID.fullmatch(value) else ""


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _outcome(request: web.Request, ok: bool, message: str, status: int = 200) -> web.Response:
    """The result of an action: JSON for the page's script, the status page for a form."""
    if _wants_json(request):
        return web.json_response({"ok": ok, "message": message}, status=status)
    chrome = chrome_for(request, "status")
    ctx = ctx_of(request)
    body = status_tools.state_section()
    body += admin_pages.status_body(chrome, list(ctx.backend.simulated_buttons()))
    body += status_tools.tools_body(chrome)
    flash = Flash("ok" if ok else "error", message)
    return render(request, "Status", body, chrome=chrome, flashes=[flash], status=status)


# Reads -------------------------------------------------------------------------------------


async def doctor(request: web.Request) -> web.StreamResponse:
    """The self-check rows."""
    rows = await ctx_of(request).backend.doctor()
    return web.json_response({"rows": [asdict(r) for r in rows]})


async def snapshot(request: web.Request) -> web.StreamResponse:
    """One still of the camera, or 409 with the reason there is none."""
    image_format = request.query.get("format", "jpeg")
    if image_format not in SNAPSHOT_FORMATS:
        raise web.HTTPBadRequest(text="Use format=jpeg or format=png.")
    try:
        data = await ctx_of(request).backend.camera_snapshot(image_format)
    except LookupError as exc:
        return web.json_response({"ok": False, "message": str(exc)}, status=409)
    return web.Response(body=data, content_type=f"image/{image_format}")


async def levels(request: web.Request) -> web.StreamResponse:
    """The microphone's level now."""
    return web.json_response(dict(ctx_of(request).backend.mic_level()))


async def logs(request: web.Request) -> web.StreamResponse:
    """The last log lines at or above ``level``."""
    level = request.query.get("level", "INFO").upper()
    if level not in LOG_LEVELS:
        raise web.HTTPBadRequest(text="Use level=DEBUG, INFO, WARNING or ERROR.")
    raw = request.query.get("limit", "200")
    limit = min(int(raw), MAX_LOG_LINES) if raw.isdigit() else 200
    lines = ctx_of(request).backend.recent_logs(level, limit)
    return web.json_response({"lines": [asdict(line) for line in lines]})


# Actions -----------------------------------------------------------------------------------


async def speaker_test(request: web.Request) -> web.StreamResponse:
    """Play the test tone."""
    try:
        seconds = ctx_of(request).backend.speaker_test()
    except LookupError as exc:
        return _outcome(request, False, str(exc), 409)
    return _outcome(request, True, f"Playing a {seconds:g} s tone on the speaker.")


async def end_room(request: web.Request) -> web.StreamResponse:
    """End a room: every participant is disconnected (53118)."""
    form = await request.post()
    room = _id(form, "room")
    if not room or not await ctx_of(request).backend.end_room(room):
        return _outcome(request, False, "There is no such open room.", 404)
    log.info("room %s ended from the status page", room)
    return _outcome(request, True, "The room was ended; everyone in it was disconnected.")


async def remove_participant(request: web.Request) -> web.StreamResponse:
    """Remove one participant (53204)."""
    form = await request.post()
    room, participant = _id(form, "room"), _id(form, "participant")
    backend = ctx_of(request).backend
    if not room or not participant or not await backend.remove_participant(room, participant):
        return _outcome(request, False, "There is no such participant in an open room.", 404)
    log.info("participant %s removed from the status page", participant)
    return _outcome(request, True, "The participant was removed from the room.")


async def revoke_invite(request: web.Request) -> web.StreamResponse:
    """Revoke an invite; redeeming it is refused from now on."""
    from .handlers_admin import invites_page

    form = await request.post()
    invite_id = _id(form, "invite_id")
    if not invite_id or not ctx_of(request).backend.revoke_invite(invite_id):
        return invites_page(request, [Flash("error", "There is no such invite.")], status=404)
    log.info("invite %s revoked", invite_id)
    return invites_page(request, [Flash("ok", "Invite revoked: nobody new can join with it.")])


def add_routes(app: web.Application) -> None:
    """Register the operator tools' routes (all private: session and CSRF as every page)."""
    r = app.router
    r.add_get("/status/doctor", doctor, name="status-doctor")
    r.add_get("/status/snapshot", snapshot, name="status-snapshot")
    r.add_get("/status/levels", levels, name="status-levels")
    r.add_get("/status/logs", logs, name="status-logs")
    r.add_post("/status/speaker-test", speaker_test, name="status-speaker-test")
    r.add_post("/status/rooms/end", end_room, name="status-room-end")
    r.add_post("/status/rooms/remove", remove_participant, name="status-participant-remove")
    r.add_post("/invites/revoke", revoke_invite, name="invites-revoke")
