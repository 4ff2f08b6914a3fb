"""``MediaBridge``: one remote participant's media, negotiated over signaling.

One peer connection per participant carries everything it publishes and everything it
receives. **The server makes every offer; the client only answers.** That rules out offer
glare (aiortc cannot roll a description back), and the client stays small:

* to publish, the client sends ``publish``; the bridge asks for a receive-only m-line per
  track (the m-line of one of the participant's unpublished tracks when one fits) and offers
  it, telling the client which ``mid`` carries which of its tracks (``publish`` map in
  ``offer``); the client attaches the track there and answers ``sendonly``. Once media
  starts, the track is published in the room and the client gets ``published``;
* a video track published with ``layers`` gets a simulcast m-line (one rid per layer); the
  layers some subscriber takes are sent to the client (``send-layers``) each time they
  change, so it pauses the rest at its encoder;
* a subscription adds a send-only m-line (the engine's ``Consumer``); after the client's
  answer it gets ``track-subscribed`` with that ``mid``;
* at most one offer is outstanding; changes made meanwhile are folded into the next one.

Data tracks ride on the same peer connection; ``DataBridge`` handles them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_common.lifecycle import TaskSet

from ..errors import TwilioError
from ..media import (
    Consumer,
    ConsumerBase,
    DataProducer,
    IncomingTrack,
    LayerSpec,
    MediaError,
    Producer,
    PublicationSlot,
    Router,
    Transport,
    sending_layers,
)
from ..media.allocator import Priority, VideoBandwidthProfile
from ..rooms import PublishedTrack
from . import protocol as p
from .data_bridge import DataBridge

logger = logging.getLogger(__name__)

_MSID = re.compile(r"^a=msid:\S+ (\S+)", re.M)
_MID = re.compile(r"^a=mid:(\S+)", re.M)
_DIRECTION = re.compile(r"^a=(sendonly|recvonly|sendrecv|inactive)\s*$", re.M)

#: The room's answer to a started incoming track: publish it and return the publication.
PublishHook = Callable[[p.TrackRequest], Awaitable[PublishedTrack]]
Send = Callable[[dict[str, Any]], None]


def _sections(sdp: str) -> list[str]:
    return sdp.replace("\r\n", "\n").split("\nm=")[1:]


def sending_mids(sdp: str) -> dict[str, str]:
    """``track id -> mid`` for the m-lines an offer *sends* on (msid track id = producer id)."""
    out: dict[str, str] = {}
    for section in _sections(sdp):
        mid, msid, direction = (
            _MID.search(section),
            _MSID.search(section),
            _DIRECTION.search(section),
        )
        if mid and msid and direction and direction.group(1) in ("sendonly", "sendrecv"):
            out[msid.group(1)] = mid.group(1)
    return out


@dataclass
class _Publication:
    """A track the client asked to publish, from ``publish`` until its media starts."""

    request: p.TrackRequest
    slot: PublicationSlot
    incoming: IncomingTrack | None = None
    track: PublishedTrack | None = None
    producer: Producer | None = None


@dataclass
class _Offer:
    number: int
    message: dict[str, Any]
    sent_at: float
    subscriptions: dict[str, str] = field(default_factory=dict)  # track sid -> mid
    publications: list[_Publication] = field(default_factory=list)


class MediaBridge:
    """The participant's ``Transport`` and the offer/answer rounds that shape it."""

    def __init__(
        self,
        router: Router,
        participant_sid: str,
        send: Send,
        publish_hook: PublishHook,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.router = router
        self.participant_sid = participant_sid
        self.transport: Transport = router.create_transport(participant_sid)
        self.transport.on_negotiation_needed = self._negotiation_needed
        self._send = send
        self._publish_hook = publish_hook
        self._clock = clock
        self._number = 0
        self._outstanding: _Offer | None = None
        self._dirty = False
        self._tasks = TaskSet(f"media of {participant_sid}")
        self._offering: asyncio.Task[None] | None = None  # the offer being made, if any
        self._requested: list[p.TrackRequest] = []  # publish asked, no m-line yet
        self._waiting: list[_Publication] = []  # m-line added, not yet offered
        self._by_mid: dict[str, _Publication] = {}
        self.consumers: dict[str, Consumer] = {}  # by track SID
        self._announced: dict[str, p.Subscription] = {}  # track SID -> what the client was told
        self._render: dict[str, tuple[int, int]] = {}
        self.producers: dict[str, Producer] = {}  # this participant's, by track SID
        self._layers_sent: dict[str, list[str]] = {}  # by track SID: the last send-layers
        self.failure: tuple[int, str] | None = None
        self.transport.on_incoming_track = self._on_incoming
        self.data = DataBridge(router, self.transport, participant_sid, send, publish_hook)

    # -- negotiation -----------------------------------------------------------------

    def _negotiation_needed(self) -> None:
        self._dirty = True
        if self._outstanding is None and (self._offering is None or self._offering.done()):
            self._offering = self._tasks.spawn(self._offer(), name="signaling-offer")

    async def _offer(self) -> None:
        await asyncio.sleep(0)  # fold the changes made in this loop iteration into one offer
        if self.transport.closed or self._outstanding is not None or not self._dirty:
            return
        self._dirty = False
        try:
            self._add_requested()
            sdp = await self.transport.create_offer()
        except Exception as exc:  # aiortc raises its own types too (InvalidStateError ...)
            if self.transport.closed or self.transport.connection_state == "closed":
                # closed while the offer was being made (or the peer connection ended under
                # it, as when the participant's browser went away): nothing to report
                return
            logger.exception("participant %s: creating an offer failed", self.participant_sid)
            self.failure = (p.SERVER_LOCAL_DESC_FAILED, f"server could not create an offer: {exc}")
            return
        self._number += 1
        publish = {}
        offered: list[_Publication] = []
        for pub in self._waiting:
            mid = pub.slot.mid
            if mid is not None:
                publish[mid] = pub.request.client_id
                self._by_mid[mid] = pub
                offered.append(pub)
        self._waiting = [pub for pub in self._waiting if pub not in offered]
        message = p.offer_message(self._number, sdp, publish)
        subscriptions = {
            sid: mid for sid, mid in sending_mids(sdp).items() if sid in self.consumers
        }
        self._outstanding = _Offer(self._number, message, self._clock(), subscriptions, offered)
        self._send(message)

    async def answer(self, message: p.Answer) -> None:
        """Apply the client's answer to the outstanding offer."""
        offer = self._outstanding
        if offer is None or message.negotiation != offer.number:
            raise p.ProtocolError(
                f"answer to negotiation {message.negotiation}, but "
                + (f"{offer.number} is outstanding" if offer else "no offer is outstanding"),
                ref=message.ref,
            )
        try:
            await self.transport.handle_answer(message.sdp)
        except Exception as exc:  # aiortc raises many types (ValueError, InvalidStateError ...)
            # aiortc may have half-applied it: this peer connection cannot be trusted now.
            raise p.ProtocolError(
                f"answer could not be applied: {str(exc)[:200]}",
                p.SERVER_REMOTE_DESC_FAILED,
                fatal=True,
            ) from exc
        self._outstanding = None
        self._after_answer(offer)
        if self._dirty:
            self._negotiation_needed()

    def _after_answer(self, offer: _Offer) -> None:
        for track_sid, mid in offer.subscriptions.items():
            consumer = self.consumers.get(track_sid)
            if consumer is not None and not consumer.closed and track_sid not in self._announced:
                body = p.subscription(consumer.producer.participant_id, track_sid, mid=mid)
                self._announced[track_sid] = body
                self._send(p.track_subscribed_message(body))
                self._send_allocation_state(track_sid, consumer)
        for pub in offer.publications:
            if not pub.slot.accepted:
                self._refuse(pub, "the answer does not send this track")
            elif pub.incoming is not None and pub.incoming.started:
                self._tasks.spawn(self._start_publication(pub))

    def subscriptions(self) -> list[dict[str, Any]]:
        """What the client was told it receives (``joined`` repeats it after a reconnect,
        since ``track-subscribed`` sent while it was away never reached it)."""
        return [*self._announced.values(), *self.data.subscriptions()]

    def overdue(self, now: float, timeout: float) -> bool:
        """Whether the outstanding offer went unanswered for longer than ``timeout``."""
        offer = self._outstanding
        return offer is not None and now - offer.sent_at > timeout

    def resend_outstanding(self) -> None:
        """After a reconnect: the client may have missed the offer, the last ``send-layers``
        of its tracks and switches of its subscriptions; send them again."""
        if self._outstanding is not None:
            self._outstanding.sent_at = self._clock()
            self._send(self._outstanding.message)
        for track_sid, rids in self._layers_sent.items():
            self._send(p.send_layers_message(track_sid, rids))
        for track_sid in list(self._announced):
            consumer = self.consumers.get(track_sid)
            if consumer is not None:
                self._send_allocation_state(track_sid, consumer, resync=True)

    # -- publishing ------------------------------------------------------------------

    def publish(self, message: p.Publish) -> None:
        """Queue receive-only m-lines for the requested tracks; an offer follows."""
        names = {pub.request.name for pub in self._all_publications()}
        names |= {request.name for request in self._requested} | self.data.names()
        for request in message.tracks:
            if request.name in names:
                why = f"track name {request.name!r} already published"
                self._send(p.publish_failed_message(request.client_id, p.TRACK_NAME_IN_USE, why))
                continue
            names.add(request.name)
            if request.kind == "data":
                self.data.publish(request)  # renegotiates itself if it adds SCTP
            else:
                self._requested.append(request)
                self._negotiation_needed()

    def _add_requested(self) -> None:
        # Only here, right before createOffer: a transceiver added while aiortc awaits inside
        # an offer/answer would be taken over by the engine before it has a mid.
        for request in self._requested:
            simulcast = [
                LayerSpec(layer.rid, layer.width, layer.height, layer.max_bitrate)
                for layer in request.layers
            ]
            slot = self.transport.add_publication_slot(
                request.kind, request.codec, simulcast=simulcast
            )
            self._waiting.append(_Publication(request, slot))
        self._requested = []

    def _all_publications(self) -> list[_Publication]:
        return [*self._waiting, *self._by_mid.values()]

    def _published_tracks(self) -> list[PublishedTrack]:
        return [pub.track for pub in self._by_mid.values() if pub.track is not None]

    def _on_incoming(self, incoming: IncomingTrack) -> None:
        pub = self._by_mid.get(incoming.mid) or next(
            (w for w in self._waiting if w.slot.mid == incoming.mid), None
        )
        if pub is None:
            return
        pub.incoming = incoming
        incoming.on_started = lambda _track: self._started(pub)

    def _started(self, pub: _Publication) -> None:
        offer = self._outstanding
        if offer is not None and pub in offer.publications:
            return  # _after_answer starts it
        self._tasks.spawn(self._start_publication(pub))

    async def _start_publication(self, pub: _Publication) -> None:
        if pub.track is not None or pub.incoming is None or self.transport.closed:
            return
        try:
            track = await self._publish_hook(pub.request)
        except TwilioError as exc:
            self._refuse(pub, exc.message, exc.code)
            return
        pub.track = track
        try:
            producer = self.router.produce(self.transport, pub.incoming, producer_id=track.sid)
        except MediaError as exc:
            self._refuse(pub, str(exc), p.MEDIA_NO_SUPPORTED_CODEC)
            return
        producer.set_enabled(track.enabled)
        producer.priority = pub.request.priority
        self.producers[track.sid] = producer
        self._send(p.published_message(pub.request.client_id, track.sid))
        if pub.slot.simulcast and len(producer.layers) > 1:
            # Adaptive simulcast: the browser encodes only the layers someone takes.
            sid = track.sid
            producer.on_wanted_layers = lambda wanted: self._send_layers(sid, producer, wanted)
            self._send_layers(sid, producer, producer.wanted_layers)

    def _send_layers(self, track_sid: str, producer: Producer, wanted: frozenset[str]) -> None:
        if producer.closed or self.transport.closed:
            self._layers_sent.pop(track_sid, None)
            return
        rids = sending_layers(list(producer.layers), wanted)
        # a consumer switching layers changes the wanted set twice; the lowest layer runs
        # anyway, so the rids to send often stay the same
        if self._layers_sent.get(track_sid) != rids:
            self._layers_sent[track_sid] = rids
            self._send(p.send_layers_message(track_sid, rids))

    def _refuse(self, pub: _Publication, why: str, code: int = p.TRACK_INVALID) -> None:
        self._send(p.publish_failed_message(pub.request.client_id, code, why))

    def set_enabled(self, track_sid: str, enabled: bool) -> None:
        """Mirror the room's mute state on the producer (its consumers learn it)."""
        producer = self.producers.get(track_sid)
        if producer is not None:
            producer.set_enabled(enabled)

    def unpublished(self, track_sid: str) -> None:
        """The room dropped one of this participant's tracks: stop forwarding it."""
        self.data.unpublished(track_sid)
        producer = self.producers.pop(track_sid, None)
        self._layers_sent.pop(track_sid, None)
        if producer is not None:
            producer.close()
        for mid, pub in list(self._by_mid.items()):
            if pub.track is not None and pub.track.sid == track_sid:
                del self._by_mid[mid]
                pub.slot.close()  # renegotiates

    # -- subscribing -----------------------------------------------------------------

    def subscribe(self, track_sid: str, producer: Producer) -> None:
        """Start forwarding ``producer`` to this participant (announced after the answer)."""
        if track_sid in self.consumers or self.transport.closed:
            return
        consumer = self.router.consume(producer, self.transport, consumer_id=f"CO{track_sid}")
        self.consumers[track_sid] = consumer
        size = self._render.get(track_sid)
        if size is not None:
            consumer.set_preferred_size(*size)
        consumer.on_switched = lambda off, _why: self._switched(track_sid, consumer, off)
        consumer.on_close(lambda _c: self._consumer_closed(track_sid, consumer))

    def subscribe_data(self, track_sid: str, producer: DataProducer) -> None:
        """Start forwarding a data track to this participant (announced once open)."""
        self.data.subscribe(track_sid, producer)

    def _consumer_closed(self, track_sid: str, consumer: Consumer) -> None:
        if self.consumers.get(track_sid) is consumer:
            del self.consumers[track_sid]
            self._announced.pop(track_sid, None)
        if consumer.producer.closed:  # unpublished: its render size will never be needed
            self._render.pop(track_sid, None)

    def unsubscribe(self, track_sid: str) -> bool:
        """Stop forwarding; True when the client had been told of the subscription."""
        if track_sid in self.data.consumers:
            return self.data.unsubscribe(track_sid)
        announced = track_sid in self._announced
        consumer = self.consumers.get(track_sid)
        if consumer is not None:
            consumer.close()
        return announced

    def set_render_size(self, track_sid: str, width: int, height: int) -> None:
        """Pick the layer of a subscribed video track from its render size (0x0: best)."""
        size = (width, height)
        self._render[track_sid] = size
        consumer = self.consumers.get(track_sid)
        if consumer is None:
            raise p.ProtocolError(f"not subscribed to {track_sid}", p.TRACK_INVALID)
        if width == 0 or height == 0:
            consumer.set_preferred_size(None, None)
        else:
            consumer.set_preferred_size(width, height)
        self.transport.reallocate()  # a bigger tile may get a bigger layer at once

    # -- bandwidth allocation ----------------------------------------------------------

    def set_bandwidth_profile(self, profile: VideoBandwidthProfile) -> None:
        """The subscriber's ``bandwidthProfile.video`` (from ``join``)."""
        self.transport.allocation.profile = profile
        self.transport.reallocate()

    def _subscribed_media(self, track_sid: str) -> Consumer | None:
        consumer = self.consumers.get(track_sid)
        if consumer is None and track_sid not in self.data.consumers:
            raise p.ProtocolError(f"not subscribed to {track_sid}", p.TRACK_INVALID)
        return consumer

    def set_priority(self, track_sid: str, priority: Priority | None) -> None:
        """The subscriber's priority for a subscribed track (None: the publisher's).

        As with Twilio, it has no effect on audio and data tracks (they are never limited).
        """
        consumer = self._subscribed_media(track_sid)
        if consumer is not None:
            self.transport.allocation.set_priority(consumer.id, priority)
            self.transport.reallocate()

    def set_switched_off(self, track_sid: str, off: bool) -> None:
        """The subscriber switches a subscribed video track off or on itself."""
        consumer = self._subscribed_media(track_sid)
        if consumer is None or consumer.kind != "video":
            raise p.ProtocolError(f"{track_sid} is not a subscribed video track", p.TRACK_INVALID)
        self.transport.allocation.set_switched_off(consumer.id, off)
        self.transport.reallocate()

    def set_publish_priority(self, track_sid: str, priority: Priority) -> bool:
        """The priority of one of this participant's tracks; True when it changed."""
        producer = self.producers.get(track_sid)
        if producer is None or producer.priority == priority:
            return False
        producer.priority = priority
        return True

    def set_sending_layers(self, track_sid: str, rids: Sequence[str]) -> None:
        """The client runs only ``rids`` of one of its simulcast tracks: the others are
        paused at its encoder (``Producer.set_paused_layers``). Before the track is
        produced (its media not set up yet) there is nothing to move."""
        producer = self.producers.get(track_sid)
        if producer is None:
            return
        if len(producer.layers) < 2:
            raise p.ProtocolError(f"sending-layers: {track_sid} is not simulcast", p.TRACK_INVALID)
        unknown = [rid for rid in rids if rid not in producer.layers]
        if unknown:
            raise p.ProtocolError(
                f"sending-layers: {track_sid} has no layer {unknown[0]!r}", p.TRACK_INVALID
            )
        producer.set_paused_layers(name for name in producer.layers if name not in rids)

    def _switched(self, track_sid: str, consumer: ConsumerBase, off: bool) -> None:
        if track_sid in self._announced and self.consumers.get(track_sid) is consumer:
            self._send_switch(track_sid, consumer, off)

    def _send_switch(self, track_sid: str, consumer: ConsumerBase, off: bool) -> None:
        publisher = consumer.producer.participant_id
        if off:
            reason = consumer.switch_reason or ""
            self._send(p.track_switched_off_message(publisher, track_sid, reason))
        else:
            self._send(p.track_switched_on_message(publisher, track_sid))

    def _send_allocation_state(
        self, track_sid: str, consumer: Consumer, *, resync: bool = False
    ) -> None:
        # What the client cannot know of a track it was just told of: its publisher's
        # priority and a switch-off. After a reconnect (``resync``) also a switch-on, which
        # may have been sent while it was away (clients ignore what changes nothing).
        publisher = consumer.producer.participant_id
        if consumer.producer.priority != "standard" or resync:
            message = p.track_priority_changed_message(
                publisher, track_sid, consumer.producer.priority
            )
            self._send(message)
        if consumer.kind == "video" and (consumer.switched_off or resync):
            self._send_switch(track_sid, consumer, consumer.switched_off)

    # -- lifetime --------------------------------------------------------------------

    async def close(self) -> None:
        """Close the transport (its producers and consumers with it). Idempotent."""
        await self._tasks.close()
        self.data.close()
        await self.transport.close()
