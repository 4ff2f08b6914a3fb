"""``LocalParticipant``: an in-process participant (the kiosk's own camera and microphone).

It is a participant of the room like any other (others see it connect, publish, mute and
leave) but has no WebSocket and no peer connection: its tracks are the media engine's
``LocalProducer``s, fed with ``EncodedFrame``s by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..media.allocator import PRIORITIES
from ..media.layers import DEFAULT_LAYER, LayerSpec
from ..rooms import Participant, PublishedTrack, RoomService

if TYPE_CHECKING:
    from ..media import CodecInfo, LocalProducer, Router

logger = logging.getLogger(__name__)


class LocalParticipant:
    """A participant whose media comes from this process."""

    def __init__(self, rooms: RoomService, participant: Participant, router: Router) -> None:
        self.rooms = rooms
        self.sid = participant.sid
        self.room_sid = participant.room_sid
        self.identity = participant.identity
        self.router = router
        self.producers: dict[str, LocalProducer] = {}
        self.connected = True
        #: Called after a track is published and its producer exists (subscriptions follow).
        self.on_published: Callable[[PublishedTrack], None] | None = None
        #: Called when the room removed this participant (kicked, room completed).
        self.on_disconnected: Callable[[], None] | None = None

    async def publish(
        self,
        name: str,
        codec: CodecInfo,
        *,
        layers: Iterable[LayerSpec] = (LayerSpec(DEFAULT_LAYER),),
        on_keyframe_request: Callable[[str], None] | None = None,
        on_wanted_layers: Callable[[frozenset[str]], None] | None = None,
        enabled: bool = True,
        priority: str = "standard",
    ) -> LocalProducer:
        """Publish a track fed with encoded frames; push them to the returned producer.

        ``layers`` lists the encodings (e.g. 720p ``main`` and 360p ``lores``): each
        subscriber gets one, by its render size and downlink; ``on_wanted_layers`` says which
        ones anybody receives, so an encoder nobody needs can stop. ``priority`` (``low``,
        ``standard``, ``high``) is what subscribers give the track when their downlink is short.
        """
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {list(PRIORITIES)}")
        track = await self.rooms.publish_track(self.sid, codec.kind, name, enabled=enabled)
        producer = self.router.produce_local(
            self.sid,
            codec,
            producer_id=track.sid,
            layers=layers,
            on_keyframe_request=on_keyframe_request,
            on_wanted_layers=on_wanted_layers,
        )
        producer.set_enabled(enabled)
        producer.priority = priority
        self.producers[track.sid] = producer
        if self.on_published is not None:
            self.on_published(track)
        return producer

    async def set_enabled(self, producer: LocalProducer, enabled: bool) -> None:
        """Mute or unmute one of this participant's tracks (the others are told)."""
        await self.rooms.set_track_enabled(self.sid, producer.id, enabled)

    async def unpublish(self, producer: LocalProducer) -> None:
        """Stop publishing a track."""
        await self.rooms.unpublish_track(self.sid, producer.id)
        self.producers.pop(producer.id, None)
        producer.close()

    async def disconnect(self) -> None:
        """Leave the room. Idempotent."""
        if not self.connected:
            return
        await self.rooms.disconnect(self.sid)
        self.closed_by_room()

    def closed_by_room(self) -> None:
        """The participant is out of the room: stop its producers (once)."""
        was_connected, self.connected = self.connected, False
        for producer in list(self.producers.values()):
            producer.close()
        self.producers.clear()
        if was_connected and self.on_disconnected is not None:
            self.on_disconnected()
