"""``DataBridge``: one remote participant's data tracks, negotiated over signaling.

Data tracks ride on SCTP data channels of the participant's one peer connection. Every
channel is *negotiated* and **the server picks its stream id**, as it makes every offer:

* to publish, the client sends ``publish`` with a ``data`` track; the server opens a
  channel (the first one adds an ``m=application`` section to its next offer), and once the
  SCTP association is up, publishes the track in the room and answers ``published`` with
  the channel's id. The client opens its side with ``negotiated: true`` and that id, and
  sends on it; the server forwards each message to the subscribers (``DataProducer``);
* a subscription gets its own channel with the publisher's reliability; once it is open the
  client gets ``track-subscribed`` with ``channel`` (id and reliability) instead of ``mid``.

A message over the size limit is dropped and answered with an ``error`` naming the track.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from edge_common.lifecycle import TaskSet

from ..errors import TwilioError
from ..media.errors import MediaError
from ..rooms import PublishedTrack
from . import protocol as p

if TYPE_CHECKING:
    from ..media import (
        DataChannel,
        DataConsumer,
        DataMessageTooLarge,
        DataProducer,
        Router,
        Transport,
    )

logger = logging.getLogger(__name__)

#: The room's answer to an opened data channel: publish the track, return the publication.
PublishHook = Callable[[p.TrackRequest], Awaitable[PublishedTrack]]
Send = Callable[[dict[str, Any]], None]


def channel_info(channel: DataChannel) -> dict[str, Any]:
    """What a client needs to open its side of a negotiated channel."""
    return {
        "id": channel.id,
        "ordered": channel.ordered,
        "max_retransmits": channel.maxRetransmits,
        "max_packet_life_time": channel.maxPacketLifeTime,
    }


class DataBridge:
    """The data tracks one participant publishes and receives, on its ``Transport``."""

    def __init__(
        self,
        router: Router,
        transport: Transport,
        participant_sid: str,
        send: Send,
        publish_hook: PublishHook,
    ) -> None:
        self.router = router
        self.transport = transport
        self.participant_sid = participant_sid
        self._send = send
        self._publish_hook = publish_hook
        self._pending: dict[str, p.TrackRequest] = {}  # client id -> asked, channel not open
        self.producers: dict[str, DataProducer] = {}  # this participant's, by track SID
        self._names: dict[str, str] = {}  # track SID -> name
        self.consumers: dict[str, DataConsumer] = {}  # by track SID
        self._announced: dict[str, dict[str, Any]] = {}  # track SID -> track-subscribed body
        self._tasks = TaskSet(f"data of {participant_sid}")

    def names(self) -> set[str]:
        """Names of the data tracks published or being published (unique per participant)."""
        return {r.name for r in self._pending.values()} | set(self._names.values())

    # -- publishing ------------------------------------------------------------------

    def publish(self, request: p.TrackRequest) -> None:
        """Open the channel the client will send this track on; ``published`` follows."""
        try:
            channel = self.transport.create_data_channel(
                request.name,
                ordered=request.ordered,
                max_retransmits=request.max_retransmits,
                max_packet_life_time=request.max_packet_life_time,
            )
        except MediaError as exc:
            self._refuse(request, str(exc), p.MAX_TRACKS_EXCEEDED)
            return
        self._pending[request.client_id] = request
        if channel.readyState == "open":
            self._tasks.spawn(self._start(request, channel))
        else:
            channel.once("open", lambda: self._tasks.spawn(self._start(request, channel)))

    async def _start(self, request: p.TrackRequest, channel: DataChannel) -> None:
        if self._pending.pop(request.client_id, None) is None or self.transport.closed:
            return
        try:
            track = await self._publish_hook(request)
        except TwilioError as exc:
            channel.close()
            self._refuse(request, exc.message, exc.code)
            return
        try:
            producer = self.router.produce_data(
                self.participant_sid, label=request.name, channel=channel, producer_id=track.sid
            )
        except MediaError:  # the room ended meanwhile: nothing left to publish into
            channel.close()
            return
        producer.on_error = lambda exc: self._too_large(track.sid, exc)
        self.producers[track.sid] = producer
        self._names[track.sid] = request.name
        producer.on_close(lambda _p: self._forget(track.sid))
        self._send(p.published_message(request.client_id, track.sid, channel_info(channel)))

    def _too_large(self, track_sid: str, exc: DataMessageTooLarge) -> None:
        self._send(p.error_message(p.INVALID_CLIENT_MESSAGE, f"data track {track_sid}: {exc}"))

    def _refuse(self, request: p.TrackRequest, why: str, code: int) -> None:
        self._send(p.publish_failed_message(request.client_id, code, why))

    def _forget(self, track_sid: str) -> None:
        self.producers.pop(track_sid, None)
        self._names.pop(track_sid, None)

    def unpublished(self, track_sid: str) -> None:
        """The room dropped one of this participant's data tracks: close its channel."""
        producer = self.producers.pop(track_sid, None)
        self._names.pop(track_sid, None)
        if producer is not None:
            producer.close()
            if producer.channel is not None:
                producer.channel.close()

    # -- subscribing -----------------------------------------------------------------

    def subscribe(self, track_sid: str, producer: DataProducer) -> None:
        """Forward ``producer`` on a new channel (announced once the channel is open)."""
        if track_sid in self.consumers or self.transport.closed:
            return
        try:
            consumer = self.router.consume_data(
                producer, self.transport, consumer_id=f"CO{track_sid}"
            )
        except MediaError as exc:
            logger.warning("participant %s: %s", self.participant_sid, exc)
            return
        self.consumers[track_sid] = consumer
        channel = consumer.channel
        assert channel is not None  # consume_data with a transport always opens one
        body = p.subscription(producer.participant_id, track_sid, channel=channel_info(channel))
        if channel.readyState == "open":
            self._announce(consumer, body)
        else:
            channel.once("open", lambda: self._announce(consumer, body))
        channel.on("close", lambda: self._consumer_closed(track_sid, consumer))

    def _announce(self, consumer: DataConsumer, body: dict[str, Any]) -> None:
        if consumer.closed or self.consumers.get(body["track_sid"]) is not consumer:
            return
        self._announced[body["track_sid"]] = body
        self._send(p.track_subscribed_message(body))

    def _consumer_closed(self, track_sid: str, consumer: DataConsumer) -> None:
        consumer.close()
        if self.consumers.get(track_sid) is consumer:
            del self.consumers[track_sid]
            self._announced.pop(track_sid, None)

    def unsubscribe(self, track_sid: str) -> bool:
        """Stop forwarding; True when the client had been told of the subscription."""
        announced = track_sid in self._announced
        consumer = self.consumers.pop(track_sid, None)
        self._announced.pop(track_sid, None)
        if consumer is not None:
            consumer.close()
        return announced

    def subscriptions(self) -> list[dict[str, Any]]:
        """What the client was told it receives (repeated in ``joined`` after a reconnect)."""
        return list(self._announced.values())

    # -- lifetime --------------------------------------------------------------------

    def close(self) -> None:
        """Stop forwarding both ways (the transport's close closes the channels). Idempotent."""
        self._tasks.cancel()
        for consumer in list(self.consumers.values()):
            consumer.close()
        for producer in list(self.producers.values()):
            producer.close()
        self.consumers.clear()
        self._announced.clear()
