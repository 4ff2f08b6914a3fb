"""The claim / sign-in handlers, and the admin router: every route in one table.

Route names starting with ``public`` are reachable without a session; the tests enumerate
this router to check that every other route refuses without one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import NoReturn

from aiohttp import web

from . import handlers_admin, handlers_media, handlers_status, handlers_system
from .app import (
    SESSION,
    chrome_for,
    clear_session_cookie,
    client_key,
    ctx_of,
    render,
    session_of,
    set_session_cookie,
)
from .claim import claim
from .errors import ClaimError, NotClaimed, WeakPassword
from .pages import auth_pages
from .pages.layout import Flash
from .sessions import COOKIE_NAME

STATIC_DIR = Path(__file__).parent / "static"
PUBLIC_ROUTES = frozenset(
    {
        "public-claim",
        "public-claim-post",
        "public-login",
        "public-login-post",
        "public-ca",
        "public-health",
        "public-static",
    }
)


def _text(form: object, name: str, limit: int = 512) -> str:
    """A text field from a posted form; anything else (a file, a huge value) reads as empty."""
    get = getattr(form, "get", None)
    value = get(name) if get else None
    return value if isinstance(value, str) and len(value) <= limit else ""


async def index(request: web.Request) -> web.StreamResponse:
    """``/admin/``: the status page is home."""
    raise web.HTTPSeeOther(ctx_of(request).base + "/status")


async def claim_get(request: web.Request) -> web.StreamResponse:
    """The claim form, shown only while the unit has no admin."""
    ctx = ctx_of(request)
    if ctx.store.is_claimed():
        raise web.HTTPSeeOther(ctx.base + "/login")
    return render(request, "Claim this unit", auth_pages.claim_body(chrome_for(request), {}))


def _lockout_page(request: web.Request, locked: float) -> web.Response:
    body = auth_pages.login_body(chrome_for(request), locked_s=locked)
    return render(request, "Sign-in locked", body, status=429)


def _lockout(request: web.Request, client: str) -> web.Response | None:
    """The lockout page while ``client`` is locked out, else None."""
    locked = ctx_of(request).throttle.locked_for(client)
    return _lockout_page(request, locked) if locked > 0 else None


async def claim_post(request: web.Request) -> web.StreamResponse:
    """Check the claim code, set the first password, sign the admin in."""
    ctx = ctx_of(request)
    if ctx.store.is_claimed():
        raise web.HTTPSeeOther(ctx.base + "/login")
    client = client_key(request)
    if (refused := _lockout(request, client)) is not None:
        return refused
    form = await request.post()
    code, password, confirm = (
        _text(form, "code", 64),
        _text(form, "password"),
        _text(form, "confirm"),
    )
    errors: dict[str, str] = {}
    if password != confirm:
        errors["confirm"] = "The two passwords differ."
    else:
        async with ctx.lock:
            try:
                if (refused := _lockout(request, client)) is not None:
                    return refused
                await asyncio.to_thread(
                    claim, ctx.data_dir, code, password, unit_name=ctx.unit_name()
                )
            except ClaimError as exc:
                errors["code"] = str(exc)
                locked = ctx.throttle.failure(client)
                if locked > 0:
                    return _lockout_page(request, locked)
            except WeakPassword as exc:
                errors["password"] = str(exc)
    if errors:
        body = auth_pages.claim_body(chrome_for(request), errors, code=code)
        return render(request, "Claim this unit", body, status=400)
    ctx.throttle.success(client)
    _signed_in(request)


def _signed_in(request: web.Request) -> NoReturn:
    ctx = ctx_of(request)
    ctx.sessions.end(request.cookies.get(COOKIE_NAME))  # never reuse a pre-existing token
    token, _ = ctx.sessions.create()
    response = web.HTTPSeeOther(ctx.base + "/status")
    set_session_cookie(request, response, token)
    raise response


async def login_get(request: web.Request) -> web.StreamResponse:
    """The sign-in form, or the lockout explanation."""
    ctx = ctx_of(request)
    if not ctx.store.is_claimed():
        raise web.HTTPSeeOther(ctx.base + "/claim")
    if ctx.sessions.get(request.cookies.get(COOKIE_NAME)) is not None:
        raise web.HTTPSeeOther(ctx.base + "/status")
    if (refused := _lockout(request, client_key(request))) is not None:
        return refused
    return render(request, "Sign in", auth_pages.login_body(chrome_for(request)))


async def login_post(request: web.Request) -> web.StreamResponse:
    """Check the password (throttled per client) and start a session."""
    ctx = ctx_of(request)
    if not ctx.store.is_claimed():
        raise web.HTTPSeeOther(ctx.base + "/claim")
    client = client_key(request)
    if (refused := _lockout(request, client)) is not None:
        return refused
    form = await request.post()
    # One check at a time: parallel guesses cannot slip past the lockout, and argon2's 64 MiB
    # per hash cannot pile up on a small board.
    async with ctx.lock:
        if (refused := _lockout(request, client)) is not None:
            return refused
        ok = await asyncio.to_thread(ctx.store.verify, _text(form, "password"))
    if ok:
        ctx.throttle.success(client)
        _signed_in(request)
    locked = ctx.throttle.failure(client)
    if locked > 0:
        return _lockout_page(request, locked)
    left = ctx.throttle.remaining(client)
    message = f"Wrong password. {left} attempt{'s' if left != 1 else ''} left before a lockout."
    body = auth_pages.login_body(chrome_for(request), error=message)
    return render(request, "Sign in", body, status=401)


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session; the cookie stops working even if replayed."""
    ctx = ctx_of(request)
    ctx.sessions.end(request.cookies.get(COOKIE_NAME))
    response = web.HTTPSeeOther(ctx.base + "/login")
    clear_session_cookie(request, response)
    raise response


async def password_get(request: web.Request) -> web.StreamResponse:
    """The change-password form."""
    body = auth_pages.password_body(chrome_for(request, "password"), {})
    return render(request, "Change password", body, current="password")


async def password_post(request: web.Request) -> web.StreamResponse:
    """Change the password: every session ends, this browser gets a new one."""
    ctx = ctx_of(request)
    # The current password is guessed here as on the sign-in page (a stolen session cookie
    # must not buy unlimited guesses): the same throttle counts both.
    client = client_key(request)
    if (refused := _lockout(request, client)) is not None:
        return refused
    form = await request.post()
    current, new, confirm = (_text(form, k) for k in ("current", "password", "confirm"))
    errors: dict[str, str] = {}
    if new != confirm:
        errors["confirm"] = "The two passwords differ."
    else:
        async with ctx.lock:
            if (refused := _lockout(request, client)) is not None:
                return refused
            try:
                changed = await asyncio.to_thread(
                    ctx.store.change_password, current, new, unit_name=ctx.unit_name()
                )
                if changed:
                    ctx.throttle.success(client)
                else:
                    locked = ctx.throttle.failure(client)
                    if locked > 0:
                        return _lockout_page(request, locked)
                    errors["current"] = "The current password is not right."
            except WeakPassword as exc:
                errors["password"] = str(exc)
            except NotClaimed as exc:
                errors["current"] = str(exc)
    if errors:
        body = auth_pages.password_body(chrome_for(request, "password"), errors)
        return render(request, "Change password", body, current="password", status=400)
    ctx.sessions.end_all()
    token, sess = ctx.sessions.create()
    request[SESSION] = sess
    response = render(
        request,
        "Change password",
        auth_pages.password_body(chrome_for(request, "password"), {}),
        current="password",
        flashes=[Flash("ok", "Password changed. Other browsers have been signed out.")],
    )
    set_session_cookie(request, response, token)
    return response


def add_routes(app: web.Application) -> None:
    """Register every admin route on the admin sub-app."""
    r = app.router
    r.add_get("/", index, name="index")
    r.add_get("/claim", claim_get, name="public-claim")
    r.add_post("/claim", claim_post, name="public-claim-post")
    r.add_get("/login", login_get, name="public-login")
    r.add_post("/login", login_post, name="public-login-post")
    r.add_post("/logout", logout, name="logout")
    r.add_get("/password", password_get, name="password")
    r.add_post("/password", password_post, name="password-post")
    r.add_get("/status", handlers_admin.status_get, name="status")
    r.add_get("/status/events", handlers_admin.status_events, name="status-events")
    r.add_post("/status/press", handlers_admin.status_press, name="status-press")
    r.add_get("/settings", handlers_admin.settings_get, name="settings")
    r.add_post("/settings", handlers_admin.settings_post, name="settings-post")
    r.add_post("/restart", handlers_admin.restart, name="restart")
    r.add_get("/keys", handlers_admin.keys_get, name="keys")
    r.add_post("/keys/create", handlers_admin.keys_create, name="keys-create")
    r.add_post("/keys/revoke", handlers_admin.keys_revoke, name="keys-revoke")
    r.add_get("/invites", handlers_admin.invites_get, name="invites")
    r.add_post("/invites", handlers_admin.invites_post, name="invites-post")
    r.add_get("/recordings", handlers_media.recordings_get, name="recordings")
    r.add_post("/recordings/delete", handlers_media.recordings_delete, name="recordings-delete")
    r.add_get("/ca.crt", handlers_system.ca_download, name="public-ca")
    r.add_get("/health", handlers_system.health, name="public-health")
    r.add_get("/tls", handlers_system.tls_get, name="tls")
    r.add_post("/tls/upload", handlers_system.tls_upload, name="tls-upload")
    r.add_post("/tls/remove", handlers_system.tls_remove, name="tls-remove")
    r.add_get("/system", handlers_system.system_get, name="system")
    r.add_post("/system/export", handlers_system.export, name="system-export")
    r.add_post("/system/import", handlers_system.import_, name="system-upload-config")
    r.add_post("/system/factory-reset", handlers_system.factory_reset, name="system-reset")
    handlers_status.add_routes(app)
    r.add_static("/static", STATIC_DIR, name="public-static", append_version=False)


__all__ = ["PUBLIC_ROUTES", "add_routes", "session_of"]
