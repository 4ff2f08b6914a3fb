"""Mounting the admin pages: :func:`setup`, the per-app context and the security middlewares.

Every route is private unless its name starts with ``public``; the auth middleware enforces
that for all routes at once, so a new page cannot forget it. Every unsafe method must carry
a CSRF token bound to the session (or, on the claim and sign-in forms, to a pre-session
cookie).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from . import csrf
from .auth import AdminStore
from .backend import Backend
from .claim import current_claim_code
from .errors import InvalidInput
from .pages.html import e
from .pages.layout import Chrome, Flash, page
from .redirect import is_loopback
from .sessions import COOKIE_NAME, Session, SessionStore
from .status import StatusHub
from .sysinfo import SysInfo
from .throttle import Throttle
from .tls import TlsManager

log = logging.getLogger("provisioning")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class AdminContext:
    """Everything the admin handlers share; one per mounted admin app."""

    backend: Backend
    data_dir: Path
    base: str
    unit_name_source: Callable[[], str]
    store: AdminStore
    sessions: SessionStore
    throttle: Throttle
    hub: StatusHub
    tls: TlsManager | None
    secret: bytes
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Differs on every start: the restart page tells the restarted unit from the old one.
    boot: str = field(default_factory=lambda: secrets.token_hex(8))

    def unit_name(self) -> str:
        """The unit's name as shown in the page header."""
        try:
            return self.unit_name_source() or "edge-appliance"
        except Exception:  # the header must render even if the config is being rewritten
            return "edge-appliance"


CTX = web.AppKey("provisioning", AdminContext)
SESSION = web.RequestKey("provisioning_session", Session)
PRE_NEW = web.RequestKey("provisioning_pre_session", str)


def ctx_of(request: web.Request) -> AdminContext:
    """The admin context of the app that matched ``request``."""
    return request.config_dict[CTX]


def session_of(request: web.Request) -> Session | None:
    """The signed-in session (set by the auth middleware), or ``None`` on public routes."""
    s = request.get(SESSION)
    return s if isinstance(s, Session) else None


def client_key(request: web.Request) -> str:
    """What throttling counts by: the TCP peer address."""
    return request.remote or "unknown"


def chrome_for(request: web.Request, current: str = "") -> Chrome:
    """Page frame data, including the CSRF token that binds this page's forms."""
    ctx = ctx_of(request)
    sess = session_of(request)
    if sess is not None:
        token = csrf.token_for(ctx.secret, "s:" + sess.key)
    else:
        pre = request.cookies.get(csrf.PRE_COOKIE) or request.get(PRE_NEW)
        if not pre or len(pre) > 64:
            pre = csrf.new_pre_session_id()
            request[PRE_NEW] = pre
        token = csrf.token_for(ctx.secret, "p:" + pre)
    return Chrome(ctx.base, ctx.unit_name(), token, sess is not None, current)


def render(
    request: web.Request,
    title: str,
    body: str,
    *,
    current: str = "",
    flashes: Sequence[Flash] = (),
    status: int = 200,
    chrome: Chrome | None = None,
) -> web.Response:
    """An HTML response of a full admin page."""
    c = chrome or chrome_for(request, current)
    response = web.Response(
        text=page(c, title, body, flashes), status=status, content_type="text/html"
    )
    pre = request.get(PRE_NEW)
    if pre:
        # Set here, not in on_response_prepare: aiohttp serialises cookies before that hook.
        response.set_cookie(
            csrf.PRE_COOKIE,
            pre,
            path=ctx_of(request).base + "/",
            httponly=True,
            secure=cookie_secure(request),
            samesite="Strict",
            max_age=3600,
        )
    return response


def cookie_secure(request: web.Request) -> bool:
    """``Secure`` everywhere but plain-HTTP loopback (where a Secure cookie would be dropped)."""
    return request.secure or not is_loopback(request)


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """Attach the session cookie with HttpOnly, SameSite=Strict, Secure and an expiry."""
    ctx = ctx_of(request)
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=ctx.sessions.max_age,
        path=ctx.base + "/",
        httponly=True,
        secure=cookie_secure(request),
        samesite="Strict",
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """Tell the browser to drop the session cookie."""
    response.del_cookie(COOKIE_NAME, path=ctx_of(request).base + "/")


#: The largest file the admin pages take (a config import): the one limit the pages and the
#: docs state.
MAX_UPLOAD_BYTES = 256 * 1024
#: The largest request: one upload and the form around it. A file a little over the limit
#: still reaches its form, which says so next to the field.
MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES + 64 * 1024


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hold every admin request to ``MAX_REQUEST_BYTES``, whatever the application the pages
    are mounted on allows (aiohttp applies the root's limit: the daemon's is the REST API's,
    64 KiB, which cut imports short)."""
    return await handler(request.clone(client_max_size=MAX_REQUEST_BYTES))


_MESSAGES = {
    400: "The request was not understood.",
    403: "This action is not allowed. If a form was open for long, reload it and try again.",
    404: "There is no such page.",
    405: "This page does not accept that method.",
    413: f"The upload is too large (the limit is {MAX_UPLOAD_BYTES // 1024} KiB).",
    429: "Too many attempts; wait a little.",
}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a readable page; bad input is a 4xx, never a 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # Our own refusals carry a sentence for the admin; aiohttp's own (413, 405...) do not.
        own = exc.text and not exc.text.startswith(str(exc.status)) and exc.status != 413
        text = exc.text if own else ""
        message = text or _MESSAGES.get(exc.status, exc.reason)
        return render(
            request, exc.reason, f'<div class="card"><p>{e(message)}</p></div>', status=exc.status
        )
    except InvalidInput as exc:
        return render(request, "Not saved", f'<div class="card"><p>{e(exc)}</p></div>', status=400)
    except ValueError:
        # The appliance refusing a value it alone can judge: bad input, not a server fault.
        log.warning("admin page %s refused a value", request.match_info.route.name)
        return render(
            request,
            "Not saved",
            '<div class="card"><p>The unit refused this value; nothing was changed.</p></div>',
            status=400,
        )
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("admin page %s failed", request.match_info.route.name)
        return render(
            request,
            "Something went wrong",
            '<div class="card"><p>The unit could not complete this. Details are in the '
            "system journal.</p></div>",
            status=500,
        )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse every non-public route without a live session."""
    route_name = request.match_info.route.name or ""
    if request.match_info.http_exception is not None or route_name.startswith("public"):
        return await handler(request)
    ctx = ctx_of(request)
    sess = ctx.sessions.get(request.cookies.get(COOKIE_NAME))
    if sess is None:
        if request.method in ("GET", "HEAD"):
            target = "login" if ctx.store.is_claimed() else "claim"
            raise web.HTTPSeeOther(f"{ctx.base}/{target}")
        raise web.HTTPForbidden(text="Sign in first.")
    request[SESSION] = sess
    return await handler(request)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every unsafe method must carry a valid CSRF token in its form."""
    if request.method in ("GET", "HEAD", "OPTIONS") or request.match_info.http_exception:
        return await handler(request)
    ctx = ctx_of(request)
    sess = session_of(request)
    if sess is not None:
        binding = "s:" + sess.key
    else:
        pre = request.cookies.get(csrf.PRE_COOKIE, "")
        binding = "p:" + pre if pre else ""
    ctype = request.content_type
    if ctype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise web.HTTPForbidden(text="This form did not come from this page.")
    form = await request.post()
    if not binding or not csrf.check(ctx.secret, binding, form.get(csrf.FIELD)):
        raise web.HTTPForbidden(
            text="This form has expired or did not come from this page. Reload it and try again."
        )
    return await handler(request)


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def csp(connect: str = "") -> str:
    """The pages' Content-Security-Policy; ``connect`` adds one origin scripts may fetch from
    (the restart page asks the unit's new address whether it answers yet). Anything but a
    plain ``scheme://host[:port]`` is left out: it must not be able to add a directive."""
    if not _ORIGIN.fullmatch(connect):
        connect = ""
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"connect-src 'self'{' ' + connect if connect else ''}; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    )


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Security headers on every admin response (static files and redirects included)."""
    h = response.headers
    h.setdefault("Content-Security-Policy", csp())
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Cache-Control", "no-store")


def setup(
    app: web.Application,
    backend: Backend,
    *,
    data_dir: Path,
    unit_name: str | Callable[[], str],
    tls: TlsManager | None = None,
    prefix: str = "/admin",
    status_interval_s: float = 2.0,
    sysinfo: SysInfo | None = None,
    throttle: Throttle | None = None,
    sessions: SessionStore | None = None,
    pages: Callable[[web.Application], None] | None = None,
) -> web.Application:
    """Mount the admin pages under ``prefix`` on ``app`` and return the admin sub-app.

    Makes the claim code on an unclaimed unit and logs it once (that is its purpose: the
    journal is one of the places an admin reads it from). ``unit_name`` may be a callable so
    a renamed unit shows its new name at once. ``tls`` enables certificate upload taking
    effect live; without it uploads apply at the next start. ``pages`` adds the caller's own
    routes to the admin app before it is mounted (behind the same session; a route named
    ``public…`` does its own checks).
    """
    from .handlers_auth import add_routes

    data_dir = Path(data_dir)
    store = AdminStore(data_dir)
    name_source = unit_name if callable(unit_name) else (lambda: unit_name)
    hub = StatusHub(backend.status_snapshot, sysinfo or SysInfo(), interval_s=status_interval_s)
    ctx = AdminContext(
        backend=backend,
        data_dir=data_dir,
        base=prefix.rstrip("/"),
        unit_name_source=name_source,
        store=store,
        sessions=sessions or SessionStore(store.credential_fingerprint),
        throttle=throttle or Throttle(),
        hub=hub,
        tls=tls,
        secret=store.session_secret(),
    )
    admin = web.Application(
        middlewares=[body_limit_middleware, errors_middleware, auth_middleware, csrf_middleware]
    )
    admin[CTX] = ctx
    admin.on_response_prepare.append(_on_prepare)
    add_routes(admin)
    if pages is not None:
        pages(admin)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        code = current_claim_code(data_dir)
        if code is not None:
            log.warning(
                "This unit is not claimed yet. Open https://<unit>%s/ and enter claim code %s",
                ctx.base,
                code,
            )
        yield
        await hub.close()

    async def on_shutdown(_: web.Application) -> None:
        await hub.close()  # ends open status streams, so shutdown does not wait on them

    admin.cleanup_ctx.append(lifecycle)
    admin.on_shutdown.append(on_shutdown)

    async def bare_prefix(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(ctx.base + "/")

    # Before the sub-app: its prefix resource would otherwise answer the bare path with 404.
    app.router.add_get(ctx.base, bare_prefix)
    app.add_subapp(ctx.base, admin)
    return admin
