"""``TwilioMedia``: one twilio-video.js participant's peer connection on the SFU.

The SDK's model differs from the unit's own protocol: **the client offers first** and
re-offers on every publish; the server offers to add subscriptions; both number their
descriptions with one shared ``revision``. Glare (both offering at once) is resolved by the
client, which rolls back: the server is *impolite* and ignores a client offer while its
own is outstanding (the client answers the server's, then offers again).

* A client track is identified by the ``a=msid`` track id of its m-line (audio, video) or
  the label of the DCEP data channel it opens (data); ``participant.tracks`` names the same
  ids. A track is published in the room once its media starts (or its channel opens).
* A subscription is a send-only m-line whose msid track id is the track SID, or a DCEP
  channel labelled with the track SID; ``subscribed`` lists ``{sid, id}`` with id = SID.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from edge_common.lifecycle import TaskSet

from ...media import (
    Consumer,
    DataChannel,
    DataConsumer,
    DataProducer,
    IncomingTrack,
    MediaError,
    Producer,
    Router,
    Transport,
)
from . import rsp

logger = logging.getLogger(__name__)

#: Called when a client track's media started: (client track id, incoming or channel).
Started = Callable[[str, IncomingTrack | DataChannel], None]


class TwilioMedia:
    """The transport, the description rounds and the client-track ids of one participant."""

    def __init__(
        self,
        router: Router,
        participant_sid: str,
        on_started: Started,
        on_changed: Callable[[], None],
    ) -> None:
        self.router = router
        self.participant_sid = participant_sid
        self.transport: Transport = router.create_transport(participant_sid)
        self.transport.on_negotiation_needed = self._negotiation_needed
        self.transport.on_incoming_track = self._on_incoming
        self.transport.use_in_band_data_channels(self._on_channel)
        self._on_started = on_started
        self._on_changed = on_changed
        self.pc_id: str | None = None
        #: The shared description revision: the highest either side used.
        self.revision = 0
        #: The revision of the last completed offer/answer round.
        self.stable = 0
        self.outstanding: dict[str, Any] | None = None  # the server's unanswered offer
        self._dirty = False
        self._offering: asyncio.Task[None] | None = None
        self.pending_out: list[dict[str, Any]] = []  # server descriptions to send
        self.incoming: dict[str, IncomingTrack] = {}  # client track id -> track
        self.channels: dict[str, DataChannel] = {}  # client track id -> channel
        self.consumers: dict[str, Consumer] = {}  # by track SID
        self.data_consumers: dict[str, DataConsumer] = {}  # by track SID
        self.subscribed_revision = 0
        self._tasks = TaskSet(f"twilio media of {participant_sid}")
        self.failure: tuple[int, str] | None = None
        #: Called with (track SID, switched off) when the allocation switches a
        #: subscription off or on.
        self.on_switched: Callable[[str, bool], None] | None = None

    # -- client descriptions ------------------------------------------------------------

    async def client_description(
        self, description: rsp.Description, *, resync: bool = False
    ) -> dict[str, Any] | None:
        """Apply a client offer or answer; returns the server's answer entry, if any.

        ``resync``: the description comes with ``sync`` (the client's last local one): one
        the server already applied is not an error but nothing to do.
        """
        if resync and (
            (description.type == "offer" and description.revision <= self.stable)
            or (description.type == "answer" and self.outstanding is None)
        ):
            return None
        if description.type == "offer":
            if self.outstanding is not None or self.transport.offer_outstanding:
                return None  # glare: the client rolls back and answers ours first
            if description.revision <= self.stable:
                raise rsp.FrameError(
                    f"offer revision {description.revision} is not after {self.stable}"
                )
            if not description.sdp:
                raise rsp.FrameError("an offer needs sdp")
            try:
                answer = await self.transport.handle_client_offer(description.sdp)
            except MediaError:
                return None  # an offer of ours started meanwhile: glare again
            self.revision = max(self.revision, description.revision)
            self.stable = description.revision
            return self._entry("answer", description.revision, answer)
        if description.type == "answer":
            offer = self.outstanding
            if offer is None or description.revision != offer["revision"]:
                raise rsp.FrameError(f"answer revision {description.revision} answers no offer")
            if not description.sdp:
                raise rsp.FrameError("an answer needs sdp")
            await self.transport.handle_answer(description.sdp)
            self.outstanding = None
            self.stable = description.revision
            if self._dirty:
                self._negotiation_needed()
            return None
        raise rsp.FrameError(f"description type {description.type[:16]!r} is not supported")

    def _entry(self, kind: str, revision: int, sdp: str) -> dict[str, Any]:
        return {"id": self.pc_id, "description": {"type": kind, "revision": revision, "sdp": sdp}}

    async def candidates(self, lines: tuple[str, ...]) -> None:
        """Trickled client candidates (the SDK resends the whole list each time)."""
        try:
            await self.transport.add_remote_candidates(list(lines))
        except (ValueError, IndexError) as exc:
            raise rsp.FrameError(f"bad ICE candidate: {exc}") from None
        except MediaError as exc:
            raise rsp.FrameError(str(exc)) from None

    # -- server offers ----------------------------------------------------------------

    def _negotiation_needed(self) -> None:
        self._dirty = True
        if self.pc_id is None or self.outstanding is not None:
            return  # before connect's offer, or one at a time: folded into the next
        if self._offering is None or self._offering.done():
            self._offering = self._tasks.spawn(self._offer(), name="twilio-offer")

    async def _offer(self) -> None:
        await asyncio.sleep(0)  # fold this loop iteration's changes into one offer
        if self.transport.closed or self.outstanding is not None or not self._dirty:
            return
        self._dirty = False
        try:
            sdp = await self.transport.create_offer()
        except MediaError:
            self._dirty = True  # a client offer is being answered: retry after it
            self._tasks.spawn(self._retry(), name="twilio-offer-retry")
            return
        except Exception as exc:  # aiortc raises its own types too
            if not self.transport.closed and self.transport.connection_state != "closed":
                logger.exception("participant %s: offer failed", self.participant_sid)
                self.failure = (53401, f"server could not create an offer: {exc}")
            return
        self.revision += 1
        entry = self._entry("offer", self.revision, sdp)
        self.outstanding = {"revision": self.revision, "entry": entry}
        self.subscribed_revision += 1
        self.pending_out.append(entry)
        self._on_changed()

    async def _retry(self) -> None:
        await asyncio.sleep(0.05)
        self._negotiation_needed()

    # -- client tracks ----------------------------------------------------------------

    def _on_incoming(self, track: IncomingTrack) -> None:
        track_id = track.remote_track_id
        if track_id is None:
            return
        self.incoming[track_id] = track
        if track.started:
            self._on_started(track_id, track)
        else:
            track.on_started = lambda t: self._on_started(track_id, t)

    def _on_channel(self, channel: DataChannel) -> None:
        label = str(channel.label)
        if label in self.channels or len(self.channels) >= rsp.MAX_TRACKS:
            channel.close()
            return
        self.channels[label] = channel
        if channel.readyState == "open":
            self._on_started(label, channel)
        else:
            channel.once("open", lambda: self._on_started(label, channel))

    def produce(self, track_id: str, track_sid: str) -> Producer | DataProducer | None:
        """Start forwarding a client track (its media started) as ``track_sid``."""
        channel = self.channels.get(track_id)
        if channel is not None:
            return self.router.produce_data(
                self.participant_sid, label=track_id, channel=channel, producer_id=track_sid
            )
        incoming = self.incoming.get(track_id)
        if incoming is None or (incoming.producer is not None and not incoming.producer.closed):
            return None  # published again under the same id: the old producer is closed
        return self.router.produce(self.transport, incoming, producer_id=track_sid)

    def unpublished(self, track_sid: str) -> None:
        """The room dropped one of this participant's tracks: stop forwarding it."""
        producer = self.router.producers.get(track_sid)
        if producer is not None and producer.participant_id == self.participant_sid:
            producer.close()
        data = self.router.data_producers.get(track_sid)
        if data is not None and data.participant_id == self.participant_sid:
            data.close()
            for label, channel in list(self.channels.items()):
                if channel is data.channel:
                    del self.channels[label]

    # -- subscriptions ----------------------------------------------------------------

    def subscribe(self, track_sid: str, producer: Producer) -> None:
        """Forward ``producer``; the next server offer adds its m-line."""
        if track_sid in self.consumers or self.transport.closed:
            return
        consumer = self.router.consume(producer, self.transport, consumer_id=f"CO{track_sid}")
        self.consumers[track_sid] = consumer
        consumer.on_close(lambda _c: self._dropped(track_sid, consumer))
        consumer.on_switched = lambda off, _why: self._switched(track_sid, consumer, off)

    def _switched(self, track_sid: str, consumer: Consumer, off: bool) -> None:
        if self.consumers.get(track_sid) is consumer and self.on_switched is not None:
            self.on_switched(track_sid, off)

    def subscribe_data(self, track_sid: str, producer: DataProducer) -> None:
        """Forward a data track on a DCEP channel labelled with its SID."""
        if track_sid in self.data_consumers or self.transport.closed:
            return
        channel = self.transport.create_data_channel(
            track_sid,
            ordered=producer.ordered,
            max_retransmits=producer.max_retransmits,
            max_packet_life_time=producer.max_packet_life_time,
        )
        self.data_consumers[track_sid] = DataConsumer(producer, f"CO{track_sid}", channel=channel)
        self.subscribed_revision += 1
        self._on_changed()

    def _dropped(self, track_sid: str, consumer: Consumer) -> None:
        if self.consumers.get(track_sid) is consumer:
            del self.consumers[track_sid]
            self.subscribed_revision += 1
            self._on_changed()

    def unsubscribe(self, track_sid: str) -> None:
        """Stop forwarding a track."""
        consumer = self.consumers.get(track_sid)
        if consumer is not None:
            consumer.close()
        data = self.data_consumers.pop(track_sid, None)
        if data is not None:
            data.close()
            self.subscribed_revision += 1
            self._on_changed()

    def subscribed(self) -> dict[str, Any]:
        """``subscribed``: every track this participant receives, id = SID."""
        sids = [*self.consumers, *self.data_consumers]
        return {
            "revision": self.subscribed_revision,
            "tracks": [{"sid": sid, "id": sid} for sid in sids],
        }

    async def close(self) -> None:
        """Close the transport (producers and consumers with it). Idempotent."""
        await self._tasks.close()
        for consumer in list(self.data_consumers.values()):
            consumer.close()
        await self.transport.close()
