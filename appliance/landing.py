"""The unit's front door at ``/``: its name, role and state, a way into a room, the admin entry.

People who were sent a join link, or a room name and a token or invite, open the unit's
address and get here. The form posts to ``/join``, which answers with a redirect to the join
page (``/join/<room>?token=…`` or ``?invite=…``), so it works without scripts. A POST keeps the
credential out of one more address (history, the address bar); the join page removes it from
its own. Only the path and query of a pasted link are used: the redirect never leaves this
unit. The form changes nothing on the unit, so it needs no CSRF token.
Also the favicon, for these pages, the admin pages and the join page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jwt
from aiohttp import web

from edge_sfu.errors import SfuError
from edge_sfu.rooms import validate_room_name
from edge_sfu.tokens import CONTENT_TYPE as TOKEN_CONTENT_TYPE
from provisioning.pages.html import attr, e

from . import __version__
from .state import DAEMON, DaemonState

#: What each role is, in the words of ``docs/roles.md``.
ROLE_WORDS = {
    "kiosk": "kiosk: a meeting-room unit that joins its room at the press of a button",
    "field": "field: a camera unit that streams to a hub",
    "hub": "hub: hosts the rooms field units stream into",
}
#: The admin pages' stylesheet: one look for every page the unit serves.
STYLESHEET = "/admin/static/admin.css"
#: A JWT: three base64url parts (a signature may be empty only for "none", never accepted).
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_JOIN_PATH = re.compile(r"/join/([^/]+)/?")
#: The longest value the form takes in any field (tokens and invites are well under it).
MAX_FIELD = 4096

FAVICON_SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">
<rect width="64" height="64" rx="12" fill="#1f3a5f"/>
<rect x="10" y="20" width="30" height="24" rx="4" fill="#fff"/>
<path d="M42 28l12-7v22l-12-7z" fill="#fff"/>
<circle cx="25" cy="32" r="5" fill="#1f3a5f"/>
</svg>
"""

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class JoinInputError(ValueError):
    """What is wrong with the join form; ``field`` is the input to show it next to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class JoinForm:
    """What the join form was given: a pasted link, or a room and a token or invite."""

    link: str = ""
    room: str = ""
    code: str = ""


def setup_landing(app: web.Application) -> None:
    """Mount ``/``, ``/join`` (the form's target) and the favicon on the daemon's app."""
    app.router.add_get("/", landing_page, name="landing")
    app.router.add_post("/join", join_redirect, name="landing-join")
    app.router.add_get("/favicon.ico", favicon, name="favicon")
    app.router.add_get("/favicon.svg", favicon, name="favicon-svg")


def join_target(form: JoinForm) -> str:
    """The join page's path for ``form`` (always a path on this unit), or ``JoinInputError``."""
    link, room, code = form.link.strip(), form.room.strip(), form.code.strip()
    if link:
        return _link_target(link)
    if not room and not code:
        raise JoinInputError("link", "Paste the link you were sent, or enter a room and a code.")
    if not room:
        raise JoinInputError("room", "Enter the room's name.")
    try:
        validate_room_name(room)
    except SfuError as exc:
        raise JoinInputError("room", f"This is not a room name: {exc}") from None
    if not code:
        raise JoinInputError("code", "Enter the token or invite you were given.")
    if len(code) > MAX_FIELD or not _JWT.fullmatch(code):
        raise JoinInputError("code", "This is not a token or an invite: check it was copied whole.")
    return _path(room, _kind(code), code)


def _link_target(link: str) -> str:
    if len(link) > MAX_FIELD:
        raise JoinInputError("link", "This link is too long to be a join link.")
    if "://" not in link and not link.startswith("/"):
        link = "//" + link  # "unit.local:8443/join/..." as copied without the scheme
    parts = urlsplit(link)
    match = _JOIN_PATH.fullmatch(parts.path)
    query = parse_qs(parts.query)
    tokens, invites = query.get("token", []), query.get("invite", [])
    if match is None or len(tokens) + len(invites) != 1:
        raise JoinInputError(
            "link", "This is not a join link: it looks like …/join/<room>?invite=… or ?token=…"
        )
    room = unquote(match.group(1))
    if tokens:
        return _path(room, "token", tokens[0])
    return _path(room, "invite", invites[0])


def _kind(code: str) -> str:
    """``token`` for an access token (Twilio's content type in its header), else ``invite``."""
    try:
        header = jwt.get_unverified_header(code)
    except jwt.PyJWTError:
        raise JoinInputError("code", "This is not a token or an invite.") from None
    return "token" if header.get("cty") == TOKEN_CONTENT_TYPE else "invite"


def _path(room: str, kind: str, value: str) -> str:
    return f"/join/{quote(room, safe='')}?{kind}={quote(value, safe='')}"


async def join_redirect(request: web.Request) -> web.StreamResponse:
    """The join form's target: to the join page, or the landing page again with the problem."""
    posted = await request.post()

    def text(key: str) -> str:
        value = posted.get(key, "")
        return value if isinstance(value, str) else ""  # a file where text belongs: ignored

    form = JoinForm(text("link"), text("room"), text("code"))
    try:
        target = join_target(form)
    except JoinInputError as exc:
        return _html(render_landing(request.app[DAEMON], form, exc), status=400)
    raise web.HTTPSeeOther(target, headers=_HEADERS)


async def landing_page(request: web.Request) -> web.StreamResponse:
    """The unit's name, role and state, the join form and the admin entry."""
    return _html(render_landing(request.app[DAEMON]))


async def favicon(request: web.Request) -> web.StreamResponse:
    """The unit's icon (SVG, which browsers take at ``/favicon.ico`` too)."""
    headers = {**_HEADERS, "Cache-Control": "public, max-age=86400"}
    return web.Response(text=FAVICON_SVG, content_type="image/svg+xml", headers=headers)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=_HEADERS)


def render_landing(
    state: DaemonState, form: JoinForm | None = None, error: JoinInputError | None = None
) -> str:
    """The whole landing page; every value from the unit or the form is escaped."""
    form = form or JoinForm()
    settings, status = state.settings, state.status
    name, role = settings.unit.name, settings.unit.role
    missing = ""
    if status.degraded:
        parts = ", ".join(sorted(status.degraded))
        missing = f'<dt>Without</dt><dd id="unit-missing">{e(parts)}</dd>'
    facts = (
        '<dl class="facts">'
        f'<dt>Name</dt><dd id="unit-name">{e(name)}</dd>'
        f'<dt>Role</dt><dd id="unit-role">{e(ROLE_WORDS.get(role, role))}</dd>'
        f'<dt>State</dt><dd id="unit-state">{e(status.line)}</dd>'
        f"{missing}"
        f'<dt>Version</dt><dd class="muted">edge-appliance {e(__version__)}</dd>'
        "</dl>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(name)}</title>"
        '<link rel="icon" href="/favicon.svg" type="image/svg+xml">'
        f'<link rel="stylesheet" href="{STYLESHEET}">'
        "</head><body>"
        f'<header><span class="brand">{e(name)}</span></header>'
        f"<main><h1>{e(name)}</h1>"
        f'<section class="card" id="unit" aria-labelledby="unit-h"><h2 id="unit-h">This unit</h2>'
        f"{facts}</section>"
        f"{_join_form(form, error)}"
        '<section class="card" id="admin" aria-labelledby="admin-h">'
        '<h2 id="admin-h">Looking after this unit</h2>'
        "<p>Claim it, change its settings, make API keys and invites, see its status.</p>"
        '<p><a class="button" href="/admin/">Admin pages</a></p></section>'
        "</main></body></html>"
    )


def _join_form(form: JoinForm, error: JoinInputError | None) -> str:
    def field(key: str, label: str, control: str, help_text: str) -> str:
        message = str(error) if error is not None and error.field == key else ""
        cls = "field has-error" if message else "field"
        return (
            f'<div class="{cls}"><label for="join-{key}">{e(label)}</label>{control}'
            f'<p class="help" id="join-{key}-help">{e(help_text)}</p>'
            f'<p class="error" id="join-{key}-err" role="alert">{e(message)}</p></div>'
        )

    def described(key: str) -> str:
        invalid = ' aria-invalid="true"' if error is not None and error.field == key else ""
        return f'aria-describedby="join-{key}-help join-{key}-err"{invalid}'

    return (
        '<form class="card" id="join" method="post" action="/join" aria-labelledby="join-h">'
        '<h2 id="join-h">Join a room</h2>'
        + field(
            "link",
            "Join link",
            f'<input type="text" id="join-link" name="link" value="{attr(form.link)}" '
            f'maxlength="{MAX_FIELD}" autocomplete="off" spellcheck="false" {described("link")}>',
            "Paste the whole link you were sent (…/join/<room>?invite=… or ?token=…).",
        )
        + '<p class="muted">or</p>'
        + field(
            "room",
            "Room",
            f'<input type="text" id="join-room" name="room" value="{attr(form.room)}" '
            f'maxlength="128" autocomplete="off" {described("room")}>',
            "The room's name.",
        )
        + field(
            "code",
            "Token or invite",
            f'<textarea id="join-code" name="code" rows="3" maxlength="{MAX_FIELD}" '
            f'spellcheck="false" {described("code")}>{e(form.code)}</textarea>',
            "An access token or an invite for that room.",
        )
        + '<button type="submit">Join</button></form>'
    )
