"""One participant's signaling session: its state machine, heartbeats and reconnect window.

A session outlives the WebSocket that created it. States::

    joined ──link lost──> reconnecting ──same reconnect token, in time──> joined
       │                        │
       └──leave / kicked──> closed <──window over (53002)

* Heartbeats both ways: the server sends ``ping`` every ``heartbeat_interval`` and answers
  the client's pings. *Any* frame from the client counts as a sign of life; after
  ``heartbeat_timeout`` of silence the link is considered lost and closed (4408).
* The reconnect window is counted from the last sign of life, so a participant whose tab
  dies is out of the room ``reconnect_window`` seconds after its last frame, whether its
  socket closed at once or silently stopped.
* Messages that break the protocol get an ``error`` (the message is ignored) or, when the
  session cannot be trusted any more, a ``disconnected`` and a close; the participant then
  leaves the room. Nothing a client sends reaches another participant's session.

The session knows nothing of rooms or media: it drives a ``Participation`` (the glue).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import TwilioError
from . import protocol as p

logger = logging.getLogger(__name__)

#: A client that sends this many invalid messages is disconnected (it is broken or hostile).
MAX_ERRORS = 100


@dataclass(frozen=True)
class SignalingSettings:
    """Timers of the protocol (seconds); ``docs/signaling.md`` documents the defaults."""

    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 12.0
    reconnect_window: float = 30.0
    #: A new socket must send ``join`` within this time.
    join_timeout: float = 10.0
    #: A client must answer an offer within this time, else it is disconnected (53402).
    answer_timeout: float = 20.0
    #: Server messages queued for a slow client before it is disconnected.
    send_queue: int = 512

    def public(self) -> dict[str, float]:
        """The values a client needs, sent in ``joined``."""
        return {
            "heartbeat_interval": self.heartbeat_interval,
            "heartbeat_timeout": self.heartbeat_timeout,
            "reconnect_window": self.reconnect_window,
        }


class State(enum.Enum):
    """Where a session is."""

    JOINED = "joined"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class Link(Protocol):
    """One WebSocket, as the session sees it."""

    def send(self, message: dict[str, Any]) -> bool:
        """Queue a message; False when the link is closed or its queue overflowed."""

    async def close(self, code: int, reason: str) -> None:
        """Close the socket (idempotent)."""


class Participation(Protocol):
    """What a joined session drives: the participant in its room and its media."""

    sid: str

    def snapshot(self) -> dict[str, Any]:
        """The room part of ``joined`` (``protocol.joined_state``)."""

    async def answer(self, message: p.Answer) -> None:
        """Apply the client's SDP answer."""

    async def publish(self, message: p.Publish) -> None:
        """Start receiving new tracks from the client."""

    async def unpublish(self, message: p.Unpublish) -> None:
        """Stop receiving a track."""

    async def set_enabled(self, message: p.SetEnabled) -> None:
        """Mute or unmute one of the client's tracks."""

    async def set_render_size(self, message: p.SetRenderSize) -> None:
        """Choose the layer of a subscribed track."""

    async def set_priority(self, message: p.SetPriority) -> None:
        """Set (or clear) the client's priority for a subscribed track."""

    async def set_publish_priority(self, message: p.SetPublishPriority) -> None:
        """Set the priority of one of the client's own tracks."""

    async def set_switched_off(self, message: p.SetSwitchedOff) -> None:
        """Switch a subscribed track off or on at the client's request."""

    async def link_stats(self, message: p.LinkStats) -> None:
        """The client's own sender's estimate of its uplink."""

    async def sending_layers(self, message: p.SendingLayers) -> None:
        """The simulcast layers the client's encoder runs now for one of its tracks."""

    def problem(self, now: float, answer_timeout: float) -> tuple[int, str] | None:
        """A reason (Twilio code, message) to disconnect the participant, if any: an offer
        left unanswered for ``answer_timeout``, a failed media connection."""

    async def suspended(self) -> None:
        """The link dropped: the participant is reconnecting."""

    async def resumed(self) -> None:
        """The client came back within the window: resend what it missed."""

    async def leave(self, reason_code: int | None) -> None:
        """The participant leaves the room for good and its media closes (idempotent)."""


class SignalingSession:
    """The signaling side of one participant, across reconnections."""

    def __init__(
        self,
        participation: Participation,
        reconnect_token: str,
        settings: SignalingSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_closed: Callable[[SignalingSession], None] | None = None,
    ) -> None:
        self.participation = participation
        self.reconnect_token = reconnect_token
        self.settings = settings
        self._clock = clock
        self._on_closed = on_closed
        self.state = State.RECONNECTING  # until the first link attaches
        self._link: Link | None = None
        self.last_seen = clock()
        self._last_ping = self.last_seen
        self._ping_ref = 0
        self.errors = 0
        self._close_lock = asyncio.Lock()

    @property
    def sid(self) -> str:
        """The participant's SID (kept across reconnections)."""
        return self.participation.sid

    @property
    def link(self) -> Link | None:
        """The current WebSocket, if any."""
        return self._link

    def attach(self, link: Link) -> bool:
        """Bind a (new) socket and send ``joined``; False when the session is over."""
        if self.state is State.CLOSED:
            return False
        self._link = link
        self.state = State.JOINED
        self.last_seen = self._last_ping = self._clock()
        state = self.participation.snapshot()
        link.send(p.joined_message(state, self.reconnect_token, self.settings.public()))
        return True

    def send(self, message: dict[str, Any]) -> None:
        """Send to the client if connected; dropped while reconnecting (``joined`` resyncs)."""
        if self._link is not None and self.state is State.JOINED:
            self._link.send(message)

    async def receive(self, link: Link, raw: str | bytes) -> None:
        """Handle one frame from ``link``. Never raises for anything the client sent."""
        if link is not self._link or self.state is not State.JOINED:
            return  # a stale socket after a reconnect: ignore it
        self.last_seen = self._clock()
        try:
            message = p.parse_client_message(raw)
            await self._dispatch(message)
        except p.ProtocolError as exc:
            await self._refuse(exc)
        except TwilioError as exc:
            # The room or the media engine refused: the client learns why, nobody else does.
            self.send(p.error_message(exc.code, exc.message))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("participant %s: message handling failed", self.sid)
            self.send(p.error_message(p.SIGNALING_ERROR, "internal error handling message"))

    async def _dispatch(self, message: p.ClientMessage) -> None:
        match message:
            case p.Ping(ref=ref):
                self.send(p.pong_message(ref))
            case p.Pong():
                pass
            case p.Join():
                raise p.ProtocolError("already joined: join is only the first message")
            case p.Leave():
                await self.close(None, "left", send=False, code=p.CLOSE_NORMAL)
            case p.Answer():
                await self.participation.answer(message)
            case p.Publish():
                await self.participation.publish(message)
            case p.Unpublish():
                await self.participation.unpublish(message)
            case p.SetEnabled():
                await self.participation.set_enabled(message)
            case p.SetRenderSize():
                await self.participation.set_render_size(message)
            case p.SetPriority():
                await self.participation.set_priority(message)
            case p.SetPublishPriority():
                await self.participation.set_publish_priority(message)
            case p.SetSwitchedOff():
                await self.participation.set_switched_off(message)
            case p.LinkStats():
                await self.participation.link_stats(message)
            case p.SendingLayers():
                await self.participation.sending_layers(message)

    async def _refuse(self, exc: p.ProtocolError) -> None:
        self.errors += 1
        if self.errors > MAX_ERRORS:
            await self.close(
                p.INVALID_CLIENT_MESSAGE, "too many invalid messages", code=p.CLOSE_PROTOCOL
            )
        elif exc.fatal:
            await self.close(exc.code, exc.message, code=p.CLOSE_PROTOCOL)
        else:
            self.send(p.error_message(exc.code, exc.message, exc.ref))

    async def link_lost(self, link: Link) -> None:
        """``link`` closed without ``leave``: start (or continue) the reconnect window."""
        if link is not self._link or self.state is not State.JOINED:
            return
        self._link = None
        self.state = State.RECONNECTING
        await self.participation.suspended()

    async def tick(self) -> None:
        """Run the timers: heartbeats, silence detection, the reconnect window."""
        now = self._clock()
        if self.state is State.JOINED:
            problem = self.participation.problem(now, self.settings.answer_timeout)
            if problem is not None:
                await self.close(*problem)
            elif now - self.last_seen > self.settings.heartbeat_timeout:
                link = self._link
                if link is not None:
                    await self.link_lost(link)
                    await link.close(p.CLOSE_TIMEOUT, f"{p.SIGNALING_TIMEOUT} heartbeat timeout")
            elif now - self._last_ping >= self.settings.heartbeat_interval:
                self._last_ping = now
                self._ping_ref += 1
                self.send(p.ping_message(self._ping_ref))
        reconnecting = self.state is State.RECONNECTING
        if reconnecting and now - self.last_seen > self.settings.reconnect_window:
            await self.close(p.SIGNALING_TIMEOUT, "reconnect window expired")

    async def close(
        self,
        reason_code: int | None,
        message: str,
        *,
        send: bool = True,
        code: int = p.CLOSE_REMOVED,
    ) -> None:
        """End the session (once): tell the client why, close its socket, leave the room.

        Also used when the room already removed the participant (a kick, a duplicate
        identity, the room completing): leaving is idempotent.
        """
        async with self._close_lock:
            if self.state is State.CLOSED:
                return
            self.state = State.CLOSED
            link, self._link = self._link, None
            if link is not None and send:
                link.send(p.disconnected_message(reason_code, message))
            # Leave first: the others must not wait for this socket's closing handshake.
            try:
                await self.participation.leave(reason_code)
            except Exception:
                logger.exception("participant %s: leaving the room failed", self.sid)
            if link is not None:
                reason = f"{reason_code} {message}" if reason_code else message
                await link.close(code, reason[:120])
            if self._on_closed is not None:
                self._on_closed(self)
