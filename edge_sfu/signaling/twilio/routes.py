"""The WebSockets twilio-video.js opens: ``/twilio/signaling`` and ``/twilio/insights``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from ...errors import TwilioError
from ..link import WebSocketLink
from ..routes import SIGNALING
from ..wire import ice_servers_json
from . import rsp
from .session import MAX_BAD, TwilioService, TwilioSession

logger = logging.getLogger(__name__)

TWILIO: web.AppKey[TwilioService] = web.AppKey("edge_sfu.twilio_signaling", TwilioService)
#: The longest silence the server negotiates (the SDK proposes 5 s).
MAX_TIMEOUT_MS = 30_000
HANDSHAKE_TIMEOUT_S = 15.0


def setup(app: web.Application) -> None:
    """Mount the SDK's endpoints; runs after ``edge_sfu.signaling.setup`` (it needs it)."""
    app.router.add_get("/twilio/signaling", signaling_socket)
    app.router.add_get("/twilio/insights", insights_socket)
    app.cleanup_ctx.append(_run_service)


async def _run_service(app: web.Application) -> AsyncIterator[None]:
    signaling = app[SIGNALING]
    service = TwilioService(signaling, session_timeout=signaling.settings.reconnect_window)
    app[TWILIO] = service
    await service.start()
    try:
        yield
    finally:
        await service.close()


def _socket() -> web.WebSocketResponse:
    return web.WebSocketResponse(
        max_msg_size=rsp.MAX_FRAME_BYTES, autoping=True, compress=False, timeout=3.0
    )


async def signaling_socket(request: web.Request) -> web.StreamResponse:
    """One SDK signaling connection: hello/welcome, then connect or sync, then updates."""
    service = request.app[TWILIO]
    ws = _socket()
    await ws.prepare(request)
    link = WebSocketLink(ws, service.signaling.settings.send_queue, peer=str(request.remote))
    session: TwilioSession | None = None
    beat: asyncio.Task[None] | None = None
    try:
        timeout_ms, session = await _handshake(service, ws, link)
        if session is not None:
            beat = asyncio.create_task(_heartbeats(link, timeout_ms))
            await _read(service, session, ws, link, timeout_ms)
    finally:
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        if session is not None:
            await service.link_lost(session, link)
        await link.close(1000, "")
    return ws


async def _heartbeats(link: WebSocketLink, timeout_ms: int) -> None:
    while link.sending:
        await asyncio.sleep(timeout_ms / 2000)
        link.send(rsp.heartbeat())


async def _frames(ws: web.WebSocketResponse, silence: float) -> AsyncIterator[str | bytes]:
    while True:
        msg = await ws.receive(timeout=silence)
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            yield msg.data
        else:
            return


async def _handshake(
    service: TwilioService, ws: web.WebSocketResponse, link: WebSocketLink
) -> tuple[int, TwilioSession | None]:
    """hello/welcome, an optional ice/iced round, then connect or sync: the session, or
    None after telling the client why not (``bad`` or an in-band error)."""
    timeout_ms = 5000
    welcomed = False
    try:
        async for raw in _frames(ws, HANDSHAKE_TIMEOUT_S):
            try:
                frame = rsp.parse_frame(raw)
                if frame["type"] == "hello":
                    timeout_ms = _negotiated(frame, timeout_ms)
                    link.send(rsp.welcome(timeout_ms))
                    welcomed = True
                elif frame["type"] not in ("msg", "heartbeat") or not welcomed:
                    raise rsp.FrameError(f"unexpected {str(frame['type'])[:40]!r} frame")
                if frame.get("body") is not None:
                    session = await _first_body(service, link, rsp.parse_body(frame["body"]))
                    if session is not None:
                        return timeout_ms, session
            except rsp.FrameError as exc:
                # During the handshake the SDK closes on ``bad`` (3002): that is the answer.
                link.send(rsp.bad(str(exc)))
                return timeout_ms, None
            except TwilioError as exc:
                link.send(rsp.error(exc.code, exc.message))
                return timeout_ms, None
    except TimeoutError:
        pass
    except Exception:  # a bug must cost this client its connect, not the server a loop
        logger.exception("twilio connect from %s failed", link.peer)
        link.send(rsp.error(rsp.SIGNALING_ERROR, "could not connect"))
    return timeout_ms, None


def _negotiated(hello: dict[str, Any], current: int) -> int:
    """The silence timeout (ms) both sides keep: the client's, at most ``MAX_TIMEOUT_MS``."""
    if hello.get("version") != rsp.FRAMING_VERSION:
        raise rsp.FrameError("unsupported framing version (SDK 2.5 or later)")
    asked = hello.get("timeout", current)
    if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0:
        return min(asked, MAX_TIMEOUT_MS)
    return current


async def _first_body(
    service: TwilioService, link: WebSocketLink, body: rsp.Body
) -> TwilioSession | None:
    if body.type == "ice":
        servers = ice_servers_json(service.signaling.media.ice_servers)
        link.send(rsp.msg({"type": "iced", "version": rsp.ICE_VERSION, "ice_servers": servers}))
        return None
    if body.type == "connect":
        return await service.connect(link, body)
    if body.type == "sync":
        return await service.sync(link, body)
    raise rsp.FrameError(f"{body.type} before connect")


async def _read(
    service: TwilioService,
    session: TwilioSession,
    ws: web.WebSocketResponse,
    link: WebSocketLink,
    timeout_ms: int,
) -> None:
    try:
        async for raw in _frames(ws, 3 * timeout_ms / 1000):
            if session.link is not link or session.closed:
                return
            session.last_seen = time.monotonic()
            try:
                if not await _handle(service, session, raw):
                    return
            except rsp.FrameError as exc:
                session.bad_count += 1
                if session.bad_count > MAX_BAD:
                    await session.close(rsp.error(rsp.INVALID_CLIENT_MESSAGE, "too many bad"))
                    return
                link.send(rsp.bad(str(exc)))
            except TwilioError as exc:
                await session.close(rsp.error(exc.code, exc.message))
                return
            except Exception:
                logger.exception("participant %s: message handling failed", session.sid)
                link.send(rsp.bad("internal error handling the message"))
    except TimeoutError:
        return  # silent for 3 timeouts: the link is lost, the session waits for sync


async def _handle(service: TwilioService, session: TwilioSession, raw: str | bytes) -> bool:
    """One frame after connect; False when the socket should close."""
    frame = rsp.parse_frame(raw)
    kind = frame["type"]
    if kind == "heartbeat":
        return True
    if kind == "bye":
        return False
    if kind != "msg":
        raise rsp.FrameError(f"unknown frame type {str(kind)[:40]!r}")
    body = rsp.parse_body(frame.get("body"))
    if body.type == "disconnect":
        await session.close()
        return False
    if body.type != "update":
        raise rsp.FrameError(f"{body.type} is not expected in a session")
    if not session.allow_update():
        raise rsp.FrameError("too many updates")
    answers = await session.apply(body)
    if answers:
        session.send_body({"type": "update", "peer_connections": answers})
    return True


async def insights_socket(request: web.Request) -> web.StreamResponse:
    """A sink for the SDK's telemetry (``wsServerInsights``): it counts messages and keeps
    nothing, so apps that cannot turn insights off still contact only the unit."""
    service = request.app[TWILIO]
    ws = _socket()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is not WSMsgType.TEXT:
            break
        service.insights_messages += 1
        if '"connect"' in msg.data[:200]:
            await ws.send_json({"type": "connected", "session": secrets.token_hex(8)})
    return ws
