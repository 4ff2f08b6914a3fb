"""Data tracks: one publisher's messages forwarded to its subscribers' data channels."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiortc import RTCDataChannel

from edge_common.lifecycle import Closeable
from edge_sfu.media.errors import DataMessageTooLarge, MediaClosed

logger = logging.getLogger(__name__)

Message = str | bytes


def message_size(message: Message) -> int:
    """Bytes on the wire for ``message`` (UTF-8 for text)."""
    return len(message.encode("utf-8")) if isinstance(message, str) else len(message)


class DataProducer(Closeable):
    """A published data track.

    ``ordered``, ``max_retransmits`` and ``max_packet_life_time`` (ms) describe the track
    (reliable ordered, or unordered lossy with ``max_retransmits=0``); each subscriber's
    channel is created with the same.
    Messages come from the publisher's ``RTCDataChannel`` (``channel`` given) or from
    in-process code through ``send``. ``attach_consumer``/``detach_consumer`` are the
    engine's internal API, for ``DataConsumer``.
    """

    def __init__(
        self,
        *,
        producer_id: str,
        participant_id: str,
        label: str,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_life_time: int | None = None,
        max_message_bytes: int = 16 * 1024,
        channel: RTCDataChannel | None = None,
    ) -> None:
        super().__init__()
        self.id = producer_id
        self.participant_id = participant_id
        self.label = label
        self.ordered = ordered
        self.max_retransmits = max_retransmits
        self.max_packet_life_time = max_packet_life_time
        self.max_message_bytes = max_message_bytes
        self.channel = channel
        self._consumers: list[DataConsumer] = []
        self.on_error: Callable[[DataMessageTooLarge], None] | None = None
        if channel is not None:
            channel.on("message", self._on_channel_message)
            channel.on("close", self.close)

    def _on_channel_message(self, message: Message) -> None:
        try:
            self.send(message)
        except DataMessageTooLarge as exc:
            logger.info("%s: %s", self.id, exc)
            if self.on_error is not None:
                self.on_error(exc)

    def send(self, message: Message) -> None:
        """Forward ``message`` to every consumer; raises DataMessageTooLarge over the limit."""
        if self.closed:
            raise MediaClosed(f"data producer {self.id} is closed")
        size = message_size(message)
        if size > self.max_message_bytes:
            raise DataMessageTooLarge(size, self.max_message_bytes)
        for consumer in self._consumers:
            consumer.deliver(message)

    def attach_consumer(self, consumer: DataConsumer) -> None:
        """Engine-internal: ``consumer`` receives this track's messages from now on."""
        if self.closed:
            raise MediaClosed(f"data producer {self.id} is closed")
        self._consumers.append(consumer)

    def detach_consumer(self, consumer: DataConsumer) -> None:
        """Engine-internal: ``consumer`` closed."""
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    def _on_close(self) -> None:
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            consumer.close_from_parent(self)


class DataConsumer(Closeable):
    """One subscriber's copy of a data track: a channel on its transport, or a callback.

    ``deliver`` is the engine's internal API, for ``DataProducer``.
    """

    def __init__(
        self,
        producer: DataProducer,
        consumer_id: str,
        *,
        channel: RTCDataChannel | None = None,
        on_message: Callable[[Message], None] | None = None,
    ) -> None:
        super().__init__()
        self.id = consumer_id
        self.producer = producer
        self.channel = channel
        self.on_message = on_message
        producer.attach_consumer(self)

    def deliver(self, message: Message) -> None:
        """Engine-internal: the producer hands over one message."""
        if self.on_message is not None:
            self.on_message(message)
            return
        channel = self.channel
        # before the channel opens (or after it closed) a message has nowhere to go
        if channel is not None and channel.readyState == "open":
            channel.send(message)

    def _on_close(self) -> None:
        if self.closed_by is not self.producer:
            self.producer.detach_consumer(self)
        if self.channel is not None and self.channel.readyState != "closed":
            self.channel.close()
