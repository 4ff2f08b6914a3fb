"""Handlers of the signed-in pages: status, settings, API keys, invites."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from yarl import URL

from . import handlers_system
from .app import chrome_for, csp, ctx_of, render
from .backend import FieldSpec
from .pages import admin_pages, status_tools
from .pages.layout import Flash
from .sessions import COOKIE_NAME
from .settings_form import parse_form, render_form, render_toc, spec_for

log = logging.getLogger(__name__)
_KEY_NAME = re.compile(r"[^<>\x00-\x1f\x7f]{1,64}")
_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ROOM = re.compile(r"[\w.\- ]{1,64}")


def _text(form: Any, name: str, limit: int = 512) -> str:
    value = form.get(name)
    return value if isinstance(value, str) and len(value) <= limit else ""


# Status ----------------------------------------------------------------------------------


async def status_get(request: web.Request) -> web.StreamResponse:
    """The live status page."""
    ctx = ctx_of(request)
    chrome = chrome_for(request, "status")
    body = status_tools.state_section()
    body += admin_pages.status_body(chrome, list(ctx.backend.simulated_buttons()))
    body += status_tools.tools_body(chrome)
    return render(request, "Status", body, chrome=chrome)


async def status_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one ``status`` event per collector interval.

    The stream ends when the session does (sign-out, password change, expiry).
    """
    ctx = ctx_of(request)
    queue = ctx.hub.subscribe()
    if queue is None:
        raise web.HTTPServiceUnavailable(text="Too many status pages are open.")
    token = request.cookies.get(COOKIE_NAME)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 5000\n\n")
        while True:
            try:
                data = await asyncio.wait_for(queue.get(), timeout=15)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if not data or ctx.sessions.get(token, touch=False) is None:
                break
            await response.write(f"event: status\ndata: {data}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        ctx.hub.unsubscribe(queue)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response


async def status_press(request: web.Request) -> web.StreamResponse:
    """Press a simulated button."""
    ctx = ctx_of(request)
    form = await request.post()
    button = _text(form, "button", 64)
    if button not in ctx.backend.simulated_buttons():
        raise web.HTTPBadRequest(text="There is no such button.")
    ctx.backend.press(button)
    raise web.HTTPSeeOther(ctx.base + "/status")


# Settings --------------------------------------------------------------------------------


def _settings_page(
    request: web.Request,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    submitted: dict[str, Any] | None = None,
    flashes: list[Flash] | None = None,
    needs_restart: bool = False,
    status: int = 200,
) -> web.Response:
    ctx = ctx_of(request)
    specs = ctx.backend.settings_schema()
    fieldsets = render_form(
        specs,
        values if values is not None else ctx.backend.load_settings(),
        errors or {},
        submitted,
    )
    chrome = chrome_for(request, "settings")
    toc = render_toc(specs, errors or {})
    body = admin_pages.settings_body(chrome, toc, fieldsets, needs_restart)
    return render(request, "Settings", body, chrome=chrome, flashes=flashes or [], status=status)


def _keys(specs: Sequence[FieldSpec], paths: Sequence[str]) -> str:
    """Config keys with their labels on the page: ``unit.name (Unit name), http.tls (HTTPS)``."""
    named = []
    for path in paths:
        spec = spec_for(specs, path)
        named.append(f"{path} ({spec.label})" if spec is not None else path)
    return ", ".join(named)


async def settings_get(request: web.Request) -> web.StreamResponse:
    """The settings form with the saved values, saying which of them wait for a restart."""
    ctx = ctx_of(request)
    pending = ctx.backend.pending_restart()
    waiting = _keys(ctx.backend.settings_schema(), pending)
    flashes = [Flash("warn", f"Saved, waiting for a restart: {waiting}.")]
    return _settings_page(request, flashes=flashes if pending else [], needs_restart=bool(pending))


async def settings_post(request: web.Request) -> web.StreamResponse:
    """Validate every field; save all or nothing; say what applied and what needs a restart."""
    ctx = ctx_of(request)
    form = await request.post()
    async with ctx.lock:
        specs = ctx.backend.settings_schema()
        current = ctx.backend.load_settings()
        new, errors = parse_form(specs, form, current)
        # The backend's checks run too (a refused field keeps its saved value in ``new``), so
        # one submission shows every problem.
        for path, message in ctx.backend.validate_settings(new).items():
            errors.setdefault(path, message)
        if errors:
            submitted = {k: v for k, v in form.items() if isinstance(v, str) and len(v) < 4096}
            return _settings_page(
                request,
                values=current,
                errors=errors,
                submitted=submitted,
                flashes=[Flash("error", "Nothing was saved. Fix the fields marked below.")],
                status=400,
            )
        result = ctx.backend.save_settings(new)
    flashes = [Flash("ok", "Settings saved.")]
    if result.applied_live:
        flashes.append(Flash("ok", f"Applied now: {_keys(specs, result.applied_live)}."))
    if result.needs_restart:
        flashes.append(Flash("warn", f"Needs a restart: {_keys(specs, result.needs_restart)}."))
    return _settings_page(request, flashes=flashes, needs_restart=bool(result.needs_restart))


async def restart(request: web.Request) -> web.StreamResponse:
    """Restart the daemon shortly after this page has been sent."""
    ctx = ctx_of(request)
    target, moved = handlers_system.next_admin_url(request)
    asyncio.get_running_loop().call_later(0.5, ctx.backend.request_restart)
    origin = URL(target).origin()
    health = str(origin.with_path(ctx.base + "/health"))
    body = admin_pages.restart_body(chrome_for(request), target, moved, health, ctx.boot)
    response = render(request, "Restarting", body)
    # The page's script asks the new address whether the unit answers there yet.
    response.headers["Content-Security-Policy"] = csp(str(origin))
    return response


# API keys --------------------------------------------------------------------------------


def _keys_page(
    request: web.Request,
    created: tuple[str, str] | None = None,
    error: str = "",
    flashes: list[Flash] | None = None,
    status: int = 200,
) -> web.Response:
    ctx = ctx_of(request)
    chrome = chrome_for(request, "keys")
    body = admin_pages.keys_body(chrome, list(ctx.backend.list_api_keys()), created, error)
    return render(request, "API keys", body, chrome=chrome, flashes=flashes or [], status=status)


async def keys_get(request: web.Request) -> web.StreamResponse:
    """List the API keys."""
    return _keys_page(request)


async def keys_create(request: web.Request) -> web.StreamResponse:
    """Create a key and show its secret this once."""
    ctx = ctx_of(request)
    form = await request.post()
    raw = form.get("name")
    name = raw.strip() if isinstance(raw, str) else ""
    if not isinstance(raw, str) or not _KEY_NAME.fullmatch(name):
        return _keys_page(
            request,
            error="Use 1 to 64 characters, without < > or control characters.",
            status=400,
        )
    sid, secret = ctx.backend.create_api_key(name)
    log.info("API key %s created", sid)
    return _keys_page(request, created=(sid, secret))


async def keys_revoke(request: web.Request) -> web.StreamResponse:
    """Revoke a key; the REST API refuses it from now on."""
    ctx = ctx_of(request)
    form = await request.post()
    sid = _text(form, "sid", 64)
    if not _SID.fullmatch(sid) or not ctx.backend.revoke_api_key(sid):
        return _keys_page(request, flashes=[Flash("error", "There is no such key.")], status=400)
    log.info("API key %s revoked", sid)
    return _keys_page(request, flashes=[Flash("ok", f"Key {sid} revoked.")])


# Invites ---------------------------------------------------------------------------------


def _default_room(snapshot: Any) -> str:
    rooms = snapshot.get("rooms") if isinstance(snapshot, dict) else None
    if rooms and isinstance(rooms[0], dict):
        return str(rooms[0].get("name", ""))
    return ""


def qr_data_uri(text: str) -> str:
    """A QR code of ``text`` as an SVG data URI (rendered locally, no network)."""
    # qrcode pulls in Pillow (several MB): loaded on the first invite, not at start.
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    buf = io.BytesIO()
    img.save(buf)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


async def invites_get(request: web.Request) -> web.StreamResponse:
    """The invite form and the invites issued so far."""
    return invites_page(request)


def invites_page(
    request: web.Request, flashes: list[Flash] | None = None, status: int = 200
) -> web.Response:
    """The invites page: the form, then the issued invites with revoke buttons."""
    ctx = ctx_of(request)
    chrome = chrome_for(request, "invites")
    room = _default_room(dict(ctx.backend.status_snapshot()))
    lifetime = ctx.backend.invite_lifetime()
    body = admin_pages.invites_body(chrome, lifetime, room, {})
    body += status_tools.issued_invites(chrome, ctx.backend.list_invites())
    return render(request, "Invites", body, chrome=chrome, flashes=flashes or [], status=status)


#: How many different guests an invite admits: the appliance's default and ceiling.
DEFAULT_GUESTS, MAX_GUESTS = 5, 50


async def invites_post(request: web.Request) -> web.StreamResponse:
    """Make an invite link and its QR code."""
    ctx = ctx_of(request)
    form = await request.post()
    room = _text(form, "room", 64).strip()
    raw_ttl = form.get("ttl", "")
    ttl_raw = (raw_ttl.strip() or "60") if isinstance(raw_ttl, str) else "x"
    errors: dict[str, str] = {}
    if not _ROOM.fullmatch(room):
        errors["room"] = "Use 1 to 64 letters, digits, spaces, dots, dashes or underscores."
    lifetime = ctx.backend.invite_lifetime()
    low, high = admin_pages.invite_minutes(lifetime)
    if not re.fullmatch(r"\d{1,6}", ttl_raw) or not low <= int(ttl_raw) <= high:
        errors["ttl"] = f"Use a whole number of minutes from {low} to {high}."
    raw_guests = form.get("guests", "")
    guests_raw = (raw_guests.strip() or str(DEFAULT_GUESTS)) if isinstance(raw_guests, str) else "x"
    if not re.fullmatch(r"\d{1,3}", guests_raw) or not 1 <= int(guests_raw) <= MAX_GUESTS:
        errors["guests"] = f"Use a whole number of guests from 1 to {MAX_GUESTS}."
    chrome = chrome_for(request, "invites")
    if errors:
        body = admin_pages.invites_body(chrome, lifetime, room, errors)
        return render(request, "Invites", body, chrome=chrome, status=400)
    url = ctx.backend.create_invite(room, int(ttl_raw) * 60, int(guests_raw))
    body = admin_pages.invites_body(chrome, lifetime, room, {}, url, qr_data_uri(url))
    body += status_tools.issued_invites(chrome, ctx.backend.list_invites())
    return render(request, "Invites", body, chrome=chrome)
