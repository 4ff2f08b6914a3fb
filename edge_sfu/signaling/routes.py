"""HTTP side of signaling: the ``/v1/signaling`` WebSocket, the join page and its files.

``setup(app)`` mounts everything on the SFU application and runs a ``SignalingService``
in the application's ``cleanup_ctx``. The appliance may put ``MediaSettings`` (ICE servers)
and ``SignalingSettings`` (timers) in the application under ``MEDIA_SETTINGS`` and
``SIGNALING_SETTINGS`` before it starts; defaults apply otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import WSMsgType, web
from aiohttp.http_websocket import WebSocketError

from ..context import SFU_CONTEXT
from ..media.settings import MediaSettings
from . import protocol as p
from .link import WebSocketLink
from .service import SignalingService, refuse
from .session import SignalingSession, SignalingSettings, State

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
SIGNALING: web.AppKey[SignalingService] = web.AppKey("edge_sfu.signaling", SignalingService)
MEDIA_SETTINGS: web.AppKey[MediaSettings] = web.AppKey("edge_sfu.media_settings", MediaSettings)
SIGNALING_SETTINGS: web.AppKey[SignalingSettings] = web.AppKey(
    "edge_sfu.signaling_settings", SignalingSettings
)

# The page runs only its own files; tokens in its URL must not leak through Referer.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "Permissions-Policy": "camera=(self), microphone=(self)",
}
STATIC_FILES = {
    "edge-video.js": "text/javascript",
    "edge-video-tracks.js": "text/javascript",
    "edge-video-simulcast.js": "text/javascript",
    "join.js": "text/javascript",
    "join-chat.js": "text/javascript",
    "join-media.js": "text/javascript",
    "join-stage.js": "text/javascript",
    "room-monitor.js": "text/javascript",
    "join.css": "text/css",
}


def setup(app: web.Application) -> None:
    """Mount signaling, the join page and the browser client on ``app``."""
    app.router.add_get("/v1/signaling", signaling_socket)
    app.router.add_get("/join/{room}", join_page)
    app.router.add_get("/static/{name}", static_file)
    app.cleanup_ctx.append(_run_service)
    app.on_shutdown.append(_close_sockets)


async def _run_service(app: web.Application) -> AsyncIterator[None]:
    service = SignalingService(
        app[SFU_CONTEXT], app.get(MEDIA_SETTINGS), app.get(SIGNALING_SETTINGS)
    )
    app[SIGNALING] = service
    await service.start()
    try:
        yield
    finally:
        await service.close()


async def _close_sockets(app: web.Application) -> None:
    # Open sockets would hold the runner's graceful shutdown for its whole timeout.
    service = app.get(SIGNALING)
    if service is not None:
        await service.shutdown()


async def join_page(request: web.Request) -> web.StreamResponse:
    """``GET /join/{room}?token=JWT`` or ``?invite=...``: the page reads both itself."""
    return web.FileResponse(STATIC_DIR / "join.html", headers=PAGE_HEADERS)


async def static_file(request: web.Request) -> web.StreamResponse:
    """The browser client's files (a fixed list: nothing else is reachable)."""
    name = request.match_info["name"]
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    headers = {"Content-Type": content_type, "Cache-Control": "no-cache"}
    headers["X-Content-Type-Options"] = "nosniff"
    return web.FileResponse(STATIC_DIR / name, headers=headers)


async def signaling_socket(request: web.Request) -> web.StreamResponse:
    """One client's signaling connection: ``join`` first, then the session's messages."""
    service = request.app[SIGNALING]
    ws = web.WebSocketResponse(
        protocols=(p.SUBPROTOCOL,),
        max_msg_size=p.MAX_FRAME_BYTES,
        autoping=True,
        compress=False,  # no inflate work (or inflate bombs) for a few small messages
        timeout=3.0,  # closing handshake
    )
    await ws.prepare(request)
    link = WebSocketLink(ws, service.settings.send_queue, peer=str(request.remote))
    session: SignalingSession | None = None
    try:
        session = await _handshake(service, ws, link, request.query.get("token"))
        if session is not None:
            await _read(session, ws, link)
    finally:
        if session is not None:
            await session.link_lost(link)
        await link.close(p.CLOSE_NORMAL, "")
    return ws


async def _handshake(
    service: SignalingService, ws: web.WebSocketResponse, link: WebSocketLink, token: str | None
) -> SignalingSession | None:
    try:
        msg = await ws.receive(timeout=service.settings.join_timeout)
    except TimeoutError:
        await refuse(link, p.SIGNALING_TIMEOUT, "no join message in time", p.CLOSE_TIMEOUT)
        return None
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None
    try:
        first = p.parse_client_message(msg.data)
    except p.ProtocolError as exc:
        await refuse(link, exc.code, exc.message, p.CLOSE_PROTOCOL)
        return None
    if not isinstance(first, p.Join):
        await refuse(link, p.INVALID_CLIENT_MESSAGE, "the first message must be join", 4400)
        return None
    try:
        return await service.join(link, first, token)
    except Exception:  # a bug must cost this client its join, not the server a traceback loop
        logger.exception("join from %s failed", link.peer)
        await refuse(link, p.SIGNALING_ERROR, "could not join", p.CLOSE_REFUSED)
        return None


async def _read(session: SignalingSession, ws: web.WebSocketResponse, link: WebSocketLink) -> None:
    while session.state is State.JOINED and session.link is link:
        msg = await ws.receive()
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            await session.receive(link, msg.data)
        elif msg.type is WSMsgType.ERROR:
            if isinstance(ws.exception(), WebSocketError):
                # A frame over the size limit, or not WebSocket at all: not a network drop.
                await session.close(
                    p.INVALID_CLIENT_MESSAGE, f"bad frame: {ws.exception()}", code=p.CLOSE_PROTOCOL
                )
            return
        else:  # CLOSE, CLOSING, CLOSED
            return


__all__ = ["MEDIA_SETTINGS", "SIGNALING", "SIGNALING_SETTINGS", "setup"]
