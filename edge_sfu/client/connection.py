"""The Python client's signaling connection: the socket, the join, heartbeats and reconnects.

``Connection`` knows the protocol's envelope (``join`` / ``joined``, ``ping`` / ``pong``, the
reconnect token and the timers ``joined`` carries) and nothing about rooms: every other
message goes, in order, to the room's ``on_message``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from ssl import SSLContext
from typing import Any, Literal

import aiohttp

from edge_common.lifecycle import TaskSet

from ..signaling.protocol import (
    MSG_DISCONNECTED,
    MSG_JOIN,
    MSG_JOINED,
    MSG_LEAVE,
    MSG_PING,
    MSG_PONG,
    PROTOCOL_VERSION,
    SIGNALING_DISCONNECTED,
    SIGNALING_ERROR,
    SIGNALING_TIMEOUT,
    SUBPROTOCOL,
)

ConnectionState = Literal["connecting", "connected", "reconnecting", "disconnected"]


class ConnectError(Exception):
    """The server refused the connection; ``code`` is the Twilio error code."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


#: ``on_joined(msg, reconnect=...)``: a ``joined`` arrived (the first, or one after a reconnect).
OnJoined = Callable[..., None]
#: ``on_message(msg)``: any other server message, awaited in the order received.
OnMessage = Callable[[dict[str, Any]], Awaitable[None]]
#: ``emit(event, *args)``: ``reconnecting``, ``reconnected``, ``disconnected(code, message)``.
Emit = Callable[..., None]


class Connection:
    """One participant's signaling: joins, reads, beats, and comes back within the window."""

    def __init__(
        self,
        url: str,
        *,
        on_joined: OnJoined,
        on_message: OnMessage,
        emit: Emit,
        reconnect: bool = True,
        heartbeat: bool = True,
        ssl: SSLContext | bool = True,
    ) -> None:
        self.url = url
        self.state: ConnectionState = "connecting"
        self.reconnect_enabled = reconnect
        self.heartbeat_enabled = heartbeat
        #: The open socket (replaced on every reconnect).
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reconnect_token = ""
        self._on_joined = on_joined
        self._on_message = on_message
        self._emit = emit
        self._ssl = ssl
        self._session: aiohttp.ClientSession | None = None
        self._timers: dict[str, float] = {}
        self._pings = itertools.count(1)
        #: The reader and the sends in flight.
        self._tasks = TaskSet("edge client connection")
        self._last_seen = time.monotonic()

    async def open(self, join: dict[str, Any]) -> dict[str, Any]:
        """Open a socket and send ``join`` (its body here); the ``joined`` answer, or
        ``ConnectError``."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        ws = await self._session.ws_connect(
            self.url,
            ssl=self._ssl,
            protocols=(SUBPROTOCOL,),
            heartbeat=None,
            timeout=aiohttp.ClientWSTimeout(ws_close=5),
        )
        await ws.send_str(json.dumps({"type": MSG_JOIN, "version": PROTOCOL_VERSION, **join}))
        msg = await ws.receive(timeout=20)
        data = _json(msg)
        if data is None or data.get("type") != MSG_JOINED:
            await ws.close()
            if data is not None and data.get("type") == MSG_DISCONNECTED:
                raise ConnectError(data.get("code"), str(data.get("message")))
            raise ConnectError(SIGNALING_ERROR, f"no joined message ({msg.type})")
        self.ws = ws
        self._last_seen = time.monotonic()
        return data

    async def start(self, join: dict[str, Any]) -> None:
        """Join, hand ``joined`` to the room, then read in the background."""
        self._joined(await self.open(join), reconnect=False)
        self._tasks.spawn(self._run(), name="edge-client-reader")

    def _joined(self, msg: dict[str, Any], *, reconnect: bool) -> None:
        self.reconnect_token = msg["reconnect_token"]
        self._timers = {
            k: float(msg[k])
            for k in ("heartbeat_interval", "heartbeat_timeout", "reconnect_window")
        }
        self._on_joined(msg, reconnect=reconnect)
        self.state = "connected"

    def send(self, message: dict[str, Any]) -> None:
        """Send a message (best effort; dropped while reconnecting)."""
        ws = self.ws
        if ws is not None and not ws.closed:
            self._tasks.spawn(ws.send_str(json.dumps(message)), name="edge-client-send")

    async def leave(self) -> None:
        """Say ``leave`` now (awaited, unlike ``send``), if there is anyone to say it to."""
        ws = self.ws
        if ws is not None and not ws.closed and not self.over:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps({"type": MSG_LEAVE}))

    async def finish(self, code: int | None, message: str) -> None:
        """The session is over (once): the room emits ``disconnected``."""
        if self.over:
            return
        self.state = "disconnected"
        self._emit("disconnected", code, message)

    async def close(self) -> None:
        """Close the socket and the tasks without saying goodbye."""
        self.state = "disconnected"
        if self.ws is not None:
            await self.ws.close()
        await self._tasks.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def over(self) -> bool:
        """Whether the session has ended (left, refused, lost for good or closed)."""
        return self.state == "disconnected"

    async def _run(self) -> None:
        while not self.over:
            ws = self.ws
            if ws is not None:
                await self._read(ws)
            if self.over:
                return
            if not self.reconnect_enabled:
                await self.finish(SIGNALING_DISCONNECTED, "signaling connection lost")
                return
            refusal = await self._reconnect()
            if refusal is not None:
                await self.finish(*refusal)
                return

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        beat = TaskSet("edge client heartbeat")  # lives as long as this socket is read
        if self.heartbeat_enabled:
            beat.spawn(self._heartbeat(ws), name="edge-client-heartbeat")
        try:
            async for msg in ws:
                data = _json(msg)
                self._last_seen = time.monotonic()
                if data is None:
                    pass
                elif data.get("type") == MSG_PING:
                    self.send({"type": MSG_PONG, "ref": data.get("ref")})
                else:
                    await self._on_message(data)
                if self.over:
                    return
        finally:
            await beat.close()

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        interval = self._timers.get("heartbeat_interval", 5.0)
        timeout = self._timers.get("heartbeat_timeout", 12.0)
        while not ws.closed:
            await asyncio.sleep(interval)
            if time.monotonic() - self._last_seen > timeout:
                await ws.close()  # the server is gone silent: reconnect
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps({"type": MSG_PING, "ref": next(self._pings)}))

    async def _reconnect(self) -> tuple[int | None, str] | None:
        """Come back with the reconnect token; None on success, else why not."""
        self.state = "reconnecting"
        self._emit("reconnecting")
        deadline = time.monotonic() + self._timers.get("reconnect_window", 30.0)
        delay = 0.25
        while time.monotonic() < deadline:
            try:
                joined = await self.open({"reconnect_token": self.reconnect_token})
            except ConnectError as exc:
                if exc.code != SIGNALING_ERROR:  # the server answered: no point in trying again
                    return (exc.code, exc.message)
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            else:
                self._joined(joined, reconnect=True)
                self._emit("reconnected")
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        return (SIGNALING_TIMEOUT, "could not reconnect within the reconnect window")


def _json(msg: aiohttp.WSMessage) -> dict[str, Any] | None:
    if msg.type is not aiohttp.WSMsgType.TEXT:
        return None
    try:
        data = json.loads(msg.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
