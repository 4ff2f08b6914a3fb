"""HTTP of WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) on the unit.

| | |
|---|---|
| ``POST /whip/{room}`` | ``application/sdp`` offer of a publisher: 201, the answer |
| ``POST /whep/{room}[/{identity}[/{track}]]`` | a viewer's offer: 201, the answer |
| ``PATCH /whip-sessions/{id}``, ``/whep-sessions/{id}`` | trickle-ice-sdpfrag: 204 |
| ``DELETE`` the same | the session ends: 200 |
| ``OPTIONS`` any of them | CORS pre-flight, ``Accept-Post`` / ``Accept-Patch`` |

Refusals carry Twilio's error body (``TwilioError.to_json``), as the REST API's do, and leave
nothing behind. ``docs/whip-whep.md`` describes it for users.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from ...errors import TokenError, TwilioError
from ...media.errors import MediaError
from ...media.settings import IceServer
from ...tokens import AccessClaims, verify_access_token
from .. import protocol as p
from ..routes import SIGNALING
from .sdp import FragmentError, parse_fragment, parse_offer
from .session import NO_SUPPORTED_MEDIA, WhipService, WhipSession, WhipSettings

logger = logging.getLogger(__name__)

WHIP: web.AppKey[WhipService] = web.AppKey("edge_sfu.whip", WhipService)
WHIP_SETTINGS: web.AppKey[WhipSettings] = web.AppKey("edge_sfu.whip_settings", WhipSettings)
SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"
#: Offers and fragments are small; a body over this is refused with 413 before it is read.
MAX_BODY_BYTES = 64 * 1024
#: Seconds a client refused for want of room (503) is told to wait before trying again.
RETRY_AFTER_S = 5
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Patch, Accept-Post",
}
PREFLIGHT = {
    **CORS,
    "Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Max-Age": "600",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup(app: web.Application) -> None:
    """Mount the endpoints; runs after ``edge_sfu.signaling.setup`` (it needs it)."""
    app.router.add_route("POST", "/whip/{room}", whip_post)
    app.router.add_route("POST", "/whep/{room}", whep_post)
    app.router.add_route("POST", "/whep/{room}/{identity}", whep_post)
    app.router.add_route("POST", "/whep/{room}/{identity}/{track}", whep_post)
    for prefix in ("whip", "whep"):
        app.router.add_route("PATCH", f"/{prefix}-sessions/{{id}}", session_patch)
        app.router.add_route("DELETE", f"/{prefix}-sessions/{{id}}", session_delete)
    for path in (
        "/whip/{room}",
        "/whep/{room}",
        "/whep/{room}/{identity}",
        "/whep/{room}/{identity}/{track}",
    ):
        app.router.add_route("OPTIONS", path, endpoint_options)
    for prefix in ("whip", "whep"):
        app.router.add_route("OPTIONS", f"/{prefix}-sessions/{{id}}", session_options)
    app.cleanup_ctx.append(_run_service)


async def _run_service(app: web.Application) -> AsyncIterator[None]:
    service = WhipService(app[SIGNALING], app.get(WHIP_SETTINGS))
    app[WHIP] = service
    await service.start()
    try:
        yield
    finally:
        await service.close()


# -- responses ----------------------------------------------------------------------


def _error(exc: TwilioError) -> web.Response:
    headers = dict(CORS)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="edge-appliance"'
    if exc.status == 503:  # RFC 9725: a full endpoint may say when to come back
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return web.Response(
        text=json.dumps(exc.to_json(), separators=(",", ":")),
        status=exc.status,
        content_type="application/json",
        headers=headers,
    )


def _refusals(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except TwilioError as exc:
            return _error(exc)
        except Exception:  # a bug must cost this request, not leak a stack trace
            logger.exception("%s %s failed", request.method, request.path)
            return _error(TwilioError("Internal error", code=20500, status=500))

    wrapped.__doc__ = handler.__doc__
    return wrapped


def ice_server_links(servers: tuple[IceServer, ...]) -> list[str]:
    """``Link`` values for the configured STUN/TURN servers (RFC 9725 section 4.6)."""
    links = []
    for server in servers:
        for url in server.urls:
            link = f'<{url}>; rel="ice-server"'
            if server.username is not None and server.credential is not None:
                link += (
                    f'; username="{_quoted(server.username)}"'
                    f'; credential="{_quoted(server.credential)}"'
                    '; credential-type="password"'
                )
            links.append(link)
    return links


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


# -- request checks -----------------------------------------------------------------


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("Invalid Access Token: none given (Authorization: Bearer)", code=20101)
    return token.strip()


def _claims(request: web.Request, room: str | None) -> AccessClaims:
    ctx = request.app[SIGNALING].context
    return verify_access_token(_bearer(request), ctx.keys, ctx.identity.account_sid, room=room)


async def _body(request: web.Request, content_type: str) -> str:
    if request.content_type != content_type:
        raise TwilioError(f"Content-Type must be {content_type}", code=20001, status=415)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise TwilioError(f"body over {MAX_BODY_BYTES} bytes", code=21617, status=413)
    raw = bytearray()
    async for chunk in request.content.iter_chunked(16 * 1024):
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise TwilioError(f"body over {MAX_BODY_BYTES} bytes", code=21617, status=413)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TwilioError("body is not UTF-8", code=20001, status=400) from None


async def _offer(request: web.Request) -> str:
    sdp = await _body(request, SDP)
    try:
        p.validate_sdp(sdp)
    except p.ProtocolError as exc:
        raise TwilioError(exc.message, code=exc.code, status=400) from None
    return sdp


def _created(request: web.Request, session: WhipSession, answer: str) -> web.Response:
    service = request.app[WHIP]
    headers = {
        **CORS,
        "Location": f"/{session.kind}-sessions/{quote(session.id)}",
        "ETag": session.etag,
        "Accept-Patch": SDPFRAG,
        "Cache-Control": "no-store",
    }
    response = web.Response(text=answer, status=201, content_type=SDP, headers=headers)
    for link in ice_server_links(service.signaling.media.ice_servers):
        response.headers.add("Link", link)
    return response


def _no_media(what: str) -> TwilioError:
    return TwilioError(
        f"the offer has no {what} m-line with a codec the unit forwards (Opus, VP8, H.264)",
        code=NO_SUPPORTED_MEDIA,
        status=406,
    )


# -- endpoints ----------------------------------------------------------------------


@_refusals
async def whip_post(request: web.Request) -> web.StreamResponse:
    """``POST /whip/{room}``: a publisher's offer; 201 with the answer."""
    room = request.match_info["room"]
    claims = _claims(request, room)
    sdp = await _offer(request)
    offer = parse_offer(sdp)
    if not any(line.sends and line.forwarded_codecs for line in offer.media):
        raise _no_media("sending")
    session, answer = await request.app[WHIP].publish(claims.identity, room, sdp)
    session.ice_ufrag, session.ice_pwd = offer.ufrag, offer.pwd
    return _created(request, session, answer)


@_refusals
async def whep_post(request: web.Request) -> web.StreamResponse:
    """``POST /whep/{room}[/{identity}[/{track}]]``: a viewer's offer; 201 with the answer.

    ``{track}`` is one of the participant's tracks, by name or SID."""
    room = request.match_info["room"]
    source = request.match_info.get("identity")
    track = request.match_info.get("track")
    claims = _claims(request, room)
    sdp = await _offer(request)
    offer = parse_offer(sdp)
    if not any(line.receives and line.forwarded_codecs for line in offer.media):
        raise _no_media("receiving")
    session, answer = await request.app[WHIP].view(claims.identity, room, source, offer, sdp, track)
    session.ice_ufrag, session.ice_pwd = offer.ufrag, offer.pwd
    return _created(request, session, answer)


def _session(request: web.Request) -> WhipSession:
    kind = request.path.strip("/").split("-", 1)[0]
    session = request.app[WHIP].get(kind, request.match_info["id"])
    claims = _claims(request, None)
    if claims.identity != session.identity:
        raise TokenError("the token is not the session's", code=20101)
    return session


@_refusals
async def session_patch(request: web.Request) -> web.StreamResponse:
    """Trickled candidates (204); an ICE restart is refused (422: aiortc cannot do one)."""
    session = _session(request)
    if_match = request.headers.get("If-Match")
    if if_match is not None and if_match.strip() not in ("*", session.etag):
        raise TwilioError("If-Match does not match the session's ETag", code=20001, status=412)
    body = await _body(request, SDPFRAG)
    try:
        fragment = parse_fragment(body)
    except FragmentError as exc:
        raise TwilioError(str(exc), code=20001, status=400) from None
    restart = (fragment.ufrag is not None and fragment.ufrag != session.ice_ufrag) or (
        fragment.pwd is not None and fragment.pwd != session.ice_pwd
    )
    if restart or (if_match is not None and if_match.strip() == "*"):
        # RFC 9725 4.3.1: a session that trickles but cannot restart answers 422.
        raise TwilioError(
            "ICE restart is not supported: end this session (DELETE) and post a new offer",
            code=20001,
            status=422,
        )
    if fragment.candidates:
        try:
            await session.transport.add_remote_candidates(fragment.candidates)
        except (ValueError, IndexError) as exc:
            raise TwilioError(f"bad ICE candidate: {exc}", code=20001, status=400) from None
        except MediaError as exc:
            raise TwilioError(str(exc), code=20001, status=400) from None
    return web.Response(status=204, headers=CORS)


@_refusals
async def session_delete(request: web.Request) -> web.StreamResponse:
    """End the session: the participant leaves, its media is released."""
    session = _session(request)
    await session.close()
    return web.Response(status=200, headers=CORS)


async def endpoint_options(request: web.Request) -> web.StreamResponse:
    """CORS pre-flight (and what the endpoint accepts)."""
    return web.Response(status=204, headers={**PREFLIGHT, "Accept-Post": SDP})


async def session_options(request: web.Request) -> web.StreamResponse:
    """CORS pre-flight of a session resource."""
    return web.Response(status=204, headers={**PREFLIGHT, "Accept-Patch": SDPFRAG})
