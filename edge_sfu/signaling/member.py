"""``RoomMember``: a remote participant in its room, as its signaling session drives it.

It implements the session's ``Participation``: requests from the client go to the
``RoomService`` (the only writer of the room model) and to the participant's
``MediaBridge``; the room's answers come back as events through ``SignalingService``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from ..rooms import Participant, PublishedTrack, RoomService
from . import protocol as p

if TYPE_CHECKING:
    from ..media import MediaSettings, Router
    from .media_bridge import Send

logger = logging.getLogger(__name__)


class RoomMember:
    """One remote participant: its room membership and its media bridge."""

    def __init__(
        self,
        rooms: RoomService,
        participant: Participant,
        router: Router,
        media: MediaSettings,
        send: Send,
    ) -> None:
        self.rooms = rooms
        self.sid = participant.sid
        self.room_sid = participant.room_sid
        self.identity = participant.identity
        self._media = media
        self._send = send
        self.left = False
        # aiortc/PyAV load on the first WebRTC session, not at start.
        from .media_bridge import MediaBridge

        self.bridge = MediaBridge(router, participant.sid, send, self._publish_track)
        #: ``(track_sid, priority)`` when this participant changed a track's priority.
        self.on_publish_priority: Callable[[str, str], None] | None = None

    def participant(self) -> Participant | None:
        """The live participant, or None once it left the room."""
        try:
            return self.rooms.participant(self.sid)
        except NotFound:
            return None

    def snapshot(self) -> dict[str, Any]:
        """The room part of ``joined``."""
        me = self.rooms.participant(self.sid)
        room = self.rooms.live_room(self.room_sid)
        if room is None:
            raise NotFound(f"room {self.room_sid} is over")
        return p.joined_state(
            room,
            me,
            self._media.ice_servers,
            self.bridge.subscriptions(),
            self._media.max_data_message_bytes,
        )

    async def _publish_track(self, request: p.TrackRequest) -> PublishedTrack:
        return await self.rooms.publish_track(
            self.sid, request.kind, request.name, enabled=request.enabled
        )

    async def answer(self, message: p.Answer) -> None:
        """Apply the client's SDP answer."""
        await self.bridge.answer(message)

    async def publish(self, message: p.Publish) -> None:
        """Offer receive-only m-lines for the client's tracks."""
        self.bridge.publish(message)

    async def unpublish(self, message: p.Unpublish) -> None:
        """Unpublish one of this participant's tracks."""
        self._own(message.track_sid)
        await self.rooms.unpublish_track(self.sid, message.track_sid)

    async def set_enabled(self, message: p.SetEnabled) -> None:
        """Mute or unmute (the room announces it to the others)."""
        self._own(message.track_sid)
        await self.rooms.set_track_enabled(self.sid, message.track_sid, message.enabled)

    def _own(self, track_sid: str) -> None:
        me = self.participant()
        if me is None or track_sid not in me.published:
            raise p.ProtocolError(f"{track_sid} is not one of your tracks", p.TRACK_INVALID)

    async def set_render_size(self, message: p.SetRenderSize) -> None:
        """Choose the layer the client receives for one subscribed track."""
        self.bridge.set_render_size(message.track_sid, message.width, message.height)

    async def set_priority(self, message: p.SetPriority) -> None:
        """The client's own priority for a subscribed track (``RemoteVideoTrack.setPriority``)."""
        self.bridge.set_priority(message.track_sid, message.priority)

    async def set_publish_priority(self, message: p.SetPublishPriority) -> None:
        """``LocalTrackPublication.setPriority``: the others hear ``track-priority-changed``."""
        self._own(message.track_sid)
        changed = self.bridge.set_publish_priority(message.track_sid, message.priority)
        if changed and self.on_publish_priority is not None:
            self.on_publish_priority(message.track_sid, message.priority)

    async def set_switched_off(self, message: p.SetSwitchedOff) -> None:
        """The client switches a subscribed video track off or on."""
        self.bridge.set_switched_off(message.track_sid, message.switched_off)

    async def link_stats(self, message: p.LinkStats) -> None:
        """The client's sender's estimate of its uplink: network quality judges by it."""
        self.bridge.transport.report_sender_estimate(message.available_send_bps)

    async def sending_layers(self, message: p.SendingLayers) -> None:
        """The simulcast layers the client's encoder runs: subscribers of the others move
        to one of these at once."""
        self._own(message.track_sid)
        self.bridge.set_sending_layers(message.track_sid, message.rids)

    def problem(self, now: float, answer_timeout: float) -> tuple[int, str] | None:
        """Why this participant must go, if it must: no answer in time, media failed."""
        if self.bridge.failure is not None:
            return self.bridge.failure
        if self.bridge.overdue(now, answer_timeout):
            return (p.CLIENT_REMOTE_DESC_FAILED, "the client did not answer the offer in time")
        if self.bridge.transport.connection_state == "failed":
            return (p.MEDIA_CONNECTION_FAILED, "media connection failed")
        return None

    async def suspended(self) -> None:
        """The signaling link dropped: the others see ``participant-reconnecting``."""
        if self.participant() is not None:
            await self.rooms.set_reconnecting(self.sid)

    async def resumed(self) -> None:
        """Back within the window: ``participant-reconnected``, and the offer again."""
        if self.participant() is not None:
            await self.rooms.set_reconnected(self.sid)
        self.bridge.resend_outstanding()

    async def leave(self, reason_code: int | None) -> None:
        """Leave the room (idempotent) and close the media."""
        if not self.left:
            self.left = True
            if self.participant() is not None:
                await self.rooms.disconnect(self.sid, reason_code)
        await self.bridge.close()
