"""The router: one room's media plane, owning transports, producers and consumers."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from aiortc import RTCDataChannel

from edge_common.lifecycle import AsyncCloseable
from edge_sfu.media.allocation import publisher_cap
from edge_sfu.media.allocator import Allocation
from edge_sfu.media.consumer import Consumer
from edge_sfu.media.data import DataConsumer, DataProducer, Message
from edge_sfu.media.errors import MediaClosed, UnsupportedCodec
from edge_sfu.media.incoming import IncomingTrack
from edge_sfu.media.layers import DEFAULT_LAYER, LayerSpec
from edge_sfu.media.local import EncodedFrame, LocalConsumer, LocalProducer
from edge_sfu.media.packet import CodecInfo
from edge_sfu.media.producer import Producer
from edge_sfu.media.settings import MediaSettings
from edge_sfu.media.transport import Transport

logger = logging.getLogger(__name__)


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


class _Owned(Protocol):
    @property
    def id(self) -> str: ...

    def on_close(self, callback: Callable[[Any], object], *, parent: object = None) -> None: ...


_O = TypeVar("_O", bound=_Owned)


def _hold(registry: dict[str, _O], item: _O, owner: object) -> _O:
    """Keep ``item`` in ``registry`` (by id) until it closes; ``owner`` closing it drops the
    whole registry itself, so it is not called back."""
    registry[item.id] = item
    item.on_close(lambda i: registry.pop(i.id, None), parent=owner)
    return item


class Router(AsyncCloseable):
    """One room's media plane.

    The router owns transports (one per remote participant), producers (remote ones are
    owned through their transport, local ones directly), consumers (through their
    producer and, for remote subscribers, their transport) and data producers. ``close``
    closes everything once. Which consumer exists is the control plane's decision:
    signaling calls ``consume`` and ``Consumer.close`` as subscribe rules say.
    """

    def __init__(self, room_id: str, settings: MediaSettings | None = None) -> None:
        super().__init__()
        self.room_id = room_id
        self.settings = settings or MediaSettings()
        self.transports: dict[str, Transport] = {}
        self.producers: dict[str, Producer] = {}
        self.data_producers: dict[str, DataProducer] = {}
        #: The cap each publisher's transport was last told (by transport id).
        self.publisher_caps: dict[str, int | None] = {}

    # -- transports ------------------------------------------------------------------

    def create_transport(self, participant_id: str, transport_id: str | None = None) -> Transport:
        """A peer connection for a remote participant (no offer/answer yet)."""
        self._check_open()
        transport = Transport(participant_id, self.settings, transport_id=transport_id)
        transport.on_allocated = self._update_publisher_caps
        return _hold(self.transports, transport, self)

    def _update_publisher_caps(self, _changed: Transport | None = None) -> None:
        """Tell each single-layer publisher the most its subscribers can take in total."""
        allocations: dict[str, list[tuple[str, Allocation]]] = {}
        for transport in list(self.transports.values()):
            for consumer_id, allocation in transport.allocation.last.items():
                consumer = transport.consumers.get(consumer_id)
                if consumer is not None and consumer.kind == "video":
                    entry = (transport.id, allocation)
                    allocations.setdefault(consumer.producer.id, []).append(entry)
        for transport in list(self.transports.values()):
            cap = publisher_cap(transport.producers.values(), allocations)
            if self.publisher_caps.get(transport.id, None) == cap:
                continue
            self.publisher_caps[transport.id] = cap
            # The estimator's REMB ceiling; an engine without one has nothing to cap.
            setter = getattr(transport, "set_publisher_cap", None)
            if setter is not None:
                setter(cap)
        for gone in set(self.publisher_caps) - set(self.transports):
            del self.publisher_caps[gone]

    # -- producers -------------------------------------------------------------------

    def produce(
        self,
        transport: Transport,
        track: IncomingTrack,
        *,
        producer_id: str | None = None,
        layers: Iterable[LayerSpec] | None = None,
    ) -> Producer:
        """Turn an incoming track of ``transport`` into a producer.

        Call after the offer/answer that brought the track. ``layers`` default to the
        track's (one per simulcast rid the answer sends, else one). If the track's codec is not
        known yet (aiortc starts receivers once DTLS connects), the producer is created
        with the codec from the track once started.
        """
        self._check_open()
        if track.codec is None:
            raise UnsupportedCodec(
                f"track {track.mid} has no forwardable codec (or is not connected yet)"
            )
        producer = Producer(
            producer_id=producer_id or _new_id("MT"),
            participant_id=transport.participant_id,
            codec=track.codec,
            layers=layers or track.layers,
            request_keyframe=track.request_keyframe,
            request_retransmission=track.request_retransmission,
            cache_size=self.settings.retransmission_cache_packets,
            keyframe_interval_s=self.settings.keyframe_request_interval_s,
        )
        track.attach(producer)
        _hold(self.producers, producer, self)
        return _hold(transport.producers, producer, transport)

    def produce_local(
        self,
        participant_id: str,
        codec: CodecInfo,
        *,
        producer_id: str | None = None,
        layers: Iterable[LayerSpec] = (LayerSpec(DEFAULT_LAYER),),
        on_keyframe_request: Callable[[str], None] | None = None,
        on_wanted_layers: Callable[[frozenset[str]], None] | None = None,
    ) -> LocalProducer:
        """A producer fed in-process with ``EncodedFrame``s (a local camera or microphone)."""
        self._check_open()
        producer = LocalProducer(
            producer_id=producer_id or _new_id("MT"),
            participant_id=participant_id,
            codec=codec,
            layers=layers,
            cache_size=self.settings.retransmission_cache_packets,
            keyframe_interval_s=self.settings.keyframe_request_interval_s,
        )
        producer.on_keyframe_request = on_keyframe_request
        producer.on_wanted_layers = on_wanted_layers
        _hold(self.producers, producer, self)
        return producer

    # -- consumers -------------------------------------------------------------------

    def consume(
        self,
        producer: Producer,
        transport: Transport,
        *,
        consumer_id: str | None = None,
    ) -> Consumer:
        """Forward ``producer`` to ``transport``'s participant. Renegotiation follows.

        Forwarding starts (with a keyframe request) once the subscriber's answer is applied
        and DTLS is up.
        """
        self._check_open()
        if producer.closed:
            raise MediaClosed(f"producer {producer.id} is closed")
        return transport.add_consumer(producer, consumer_id or _new_id("CO"))

    def consume_local(
        self,
        producer: Producer,
        on_frame: Callable[[EncodedFrame], None],
        *,
        consumer_id: str | None = None,
    ) -> LocalConsumer:
        """Deliver ``producer``'s media to in-process code as ``EncodedFrame``s."""
        self._check_open()
        consumer = LocalConsumer(producer, consumer_id or _new_id("CO"), on_frame)
        consumer.start()
        return consumer

    # -- data ------------------------------------------------------------------------

    def produce_data(
        self,
        participant_id: str,
        *,
        label: str,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_life_time: int | None = None,
        channel: RTCDataChannel | None = None,
        producer_id: str | None = None,
    ) -> DataProducer:
        """A data track, from a remote participant's channel or (no channel) local code."""
        self._check_open()
        if channel is not None:
            ordered = channel.ordered
            max_retransmits = channel.maxRetransmits
            max_packet_life_time = channel.maxPacketLifeTime
        producer = DataProducer(
            producer_id=producer_id or _new_id("MT"),
            participant_id=participant_id,
            label=label,
            ordered=ordered,
            max_retransmits=max_retransmits,
            max_packet_life_time=max_packet_life_time,
            max_message_bytes=self.settings.max_data_message_bytes,
            channel=channel,
        )
        return _hold(self.data_producers, producer, self)

    def consume_data(
        self,
        producer: DataProducer,
        transport: Transport | None = None,
        *,
        on_message: Callable[[Message], None] | None = None,
        consumer_id: str | None = None,
    ) -> DataConsumer:
        """Forward a data track to a transport (a new negotiated channel with the same
        reliability: its ``id`` is for the subscriber to open its side) or a callback."""
        self._check_open()
        channel = None
        if transport is not None:
            channel = transport.create_data_channel(
                producer.label,
                ordered=producer.ordered,
                max_retransmits=producer.max_retransmits,
                max_packet_life_time=producer.max_packet_life_time,
            )
        elif on_message is None:
            raise ValueError("consume_data needs a transport or an on_message callback")
        return DataConsumer(
            producer, consumer_id or _new_id("CO"), channel=channel, on_message=on_message
        )

    # -- lifetime --------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise MediaClosed(f"router of room {self.room_id} is closed")

    async def _on_close(self) -> None:
        """Close every producer, data producer and transport, once; none calls back."""
        producers, self.producers = self.producers, {}
        for producer in producers.values():
            producer.close_from_parent(self)
        data_producers, self.data_producers = self.data_producers, {}
        for data_producer in data_producers.values():
            data_producer.close_from_parent(self)
        transports, self.transports = self.transports, {}
        await asyncio.gather(
            *(t.close_from_parent(self) for t in transports.values()), return_exceptions=True
        )
