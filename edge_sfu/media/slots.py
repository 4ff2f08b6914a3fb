"""M-line slots of a transport: what the SFU receives on and what it sends on.

``PublicationSlot``: a receive-only m-line for one track the participant publishes.
Signaling asks its ``Transport`` for one (``add_publication_slot``), offers it, and learns
from the answer whether the participant sends on it; signaling never touches a transceiver.
Once closed (unpublished), it is reused by the participant's next publication that fits.

``SendSlot``: a send-only m-line carrying one consumer, reused by the next consumer once
that one closes (``Transport.add_consumer``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from edge_sfu.media import seam
from edge_sfu.media.consumer import Consumer
from edge_sfu.media.layers import LayerSpec

logger = logging.getLogger(__name__)


def codec_preferences(kind: str, codec: str) -> list[RTCRtpCodecCapability]:
    """aiortc capabilities for ``codec`` (every profile of it), with RTX for video."""
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    caps = capabilities.codecs if capabilities is not None else []
    chosen = [c for c in caps if c.mimeType.split("/", 1)[1].lower() == codec.lower()]
    rtx = [c for c in caps if c.mimeType.lower().endswith("/rtx")]
    return chosen + rtx


class PublicationSlot:
    """One receive-only m-line offered for one track of the participant.

    aiortc never drops an m-line, so the m-line of an unpublished track is kept: once closed,
    the transport gives it to the participant's next publication of the same kind and codec
    (``Transport.add_publication_slot``), with a fresh ``IncomingTrack`` on the same mid.

    ``rids``: a simulcast m-line's rids (its first publication's layers, lowest first), for
    life: a browser fixes its send encodings when it first answers an m-line, so the offer
    always lists them. ``simulcast``: the layers of the publication on it now; a publication
    without layers on a simulcast m-line receives its lowest rid only, the others paused.
    """

    def __init__(
        self,
        transceiver: RTCRtpTransceiver,
        codec: str | None,
        on_close: Callable[[PublicationSlot], None],
        simulcast: Sequence[LayerSpec] = (),
    ) -> None:
        self.transceiver = transceiver
        #: The codec the m-line is restricted to (lower case), None for any.
        self.codec = None if codec is None else codec.lower()
        self.simulcast: tuple[LayerSpec, ...] = tuple(simulcast)
        self.rids: tuple[str, ...] = tuple(spec.name for spec in simulcast)
        self._on_close = on_close
        self.closed = False
        #: Given to a new publication: its incoming track is made at the next offer.
        self.reopened = False

    @property
    def kind(self) -> str:
        """``audio`` or ``video``."""
        return str(self.transceiver.kind)

    @property
    def mid(self) -> str | None:
        """The m-line's ``mid``, once an offer included it."""
        mid = self.transceiver.mid
        return None if mid is None else str(mid)

    @property
    def accepted(self) -> bool:
        """Whether the participant's answer sends on this m-line."""
        return self.transceiver.currentDirection in ("recvonly", "sendrecv")

    def fits(self, kind: str, codec: str | None, rids: Sequence[str] = ()) -> bool:
        """Whether a new publication of ``kind`` restricted to ``codec`` can take this
        m-line: it is closed, was offered, has the same kind and codec restriction, and the
        same simulcast rids (a publication without layers fits any)."""
        wanted = None if codec is None else codec.lower()
        return (
            self.closed
            and self.mid is not None
            and self.kind == kind
            and self.codec == wanted
            and (not rids or self.rids == tuple(rids))
        )

    def reopen(self, simulcast: Sequence[LayerSpec] = ()) -> None:
        """Receive a new publication here from the next offer on, with its layers (the
        sizes it announced for this m-line's rids; none for one stream)."""
        self.closed = False
        self.reopened = True
        self.simulcast = tuple(simulcast)
        self.transceiver.direction = "recvonly"

    def close(self) -> None:
        """Stop receiving here: the m-line goes ``inactive`` at the next offer. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.reopened = False
        self.transceiver.direction = "inactive"
        self._on_close(self)


class SendSlot:
    """A send-only m-line towards the participant, and the consumer it carries now.

    aiortc never reuses an m-line: every offer keeps every m-line ever negotiated, stopped or
    not, so a subscriber that outlives many publications would grow by one m-line (and the
    state behind it) per publication, until its answer no longer fits in a signaling frame.
    The SFU reuses them itself: a consumer that closes leaves its m-line inactive and the slot
    free, and the next consumer of the same codec takes it over. The m-line keeps its mid,
    SSRC and payload type; the new consumer continues the sequence numbers and timestamps
    where the last one stopped, since the receiver (and its jitter buffer) on the
    participant's side is the same one.
    """

    def __init__(self, transceiver: RTCRtpTransceiver, capability: RTCRtpCodecCapability) -> None:
        self.transceiver = transceiver
        self.capability = capability
        self.consumer: Consumer | None = None
        #: What aiortc gave the sender when it started (once per m-line).
        self.params: seam.SendParams | None = None
        #: A new consumer waits for the answer that sends its msid on this m-line.
        self.handover = False
        self._numbering: tuple[int | None, int, float] | None = None

    @property
    def free(self) -> bool:
        """Whether no consumer uses this m-line."""
        return self.consumer is None

    def fits(self, kind: str, capability: RTCRtpCodecCapability) -> bool:
        """Whether a consumer of ``kind`` pinned to ``capability`` can take this m-line."""
        return self.free and self.transceiver.kind == kind and self.capability == capability

    def attach(self, consumer: Consumer, *, reused: bool) -> None:
        """Carry ``consumer`` from the next offer on; msid names its producer."""
        producer = consumer.producer
        self.consumer = consumer
        self.transceiver.direction = "sendonly"
        # msid: the publishing participant is the stream, the producer is the track
        seam.set_msid(self.transceiver.sender, producer.participant_id, producer.id)
        if reused:
            self.handover = True
            if self._numbering is not None:
                # Consumer's own re-basing at its first keyframe then continues from here.
                consumer.continue_numbering(self._numbering)

    def detach(self, consumer: Consumer) -> None:
        """``consumer`` closed: the m-line goes inactive at the next offer, free for reuse."""
        if self.consumer is not consumer:
            return
        numbering = consumer.numbering()
        if numbering[0] is not None:
            self._numbering = numbering
        self.consumer = None
        self.handover = False
        self.transceiver.direction = "inactive"

    def answered(self) -> None:
        """The participant's answer was applied: start a consumer handed this m-line."""
        consumer = self.consumer
        if (
            self.handover
            and consumer is not None
            and self.params is not None
            # sendrecv: the participant also publishes on this m-line (recycled)
            and self.transceiver.currentDirection in ("sendonly", "sendrecv")
        ):
            self.handover = False
            consumer.send_started(self.params)

    def on_start(self, params: seam.SendParams) -> None:
        """aiortc started the sender (the first time the m-line was negotiated)."""
        self.params = params
        self.handover = False
        if self.consumer is not None:
            self.consumer.send_started(params)

    def on_rtcp(self, packet: Any) -> None:
        """The participant's feedback on this m-line's SSRC."""
        if self.consumer is not None:
            try:
                self.consumer.handle_rtcp(packet)
            except Exception:  # raised here, it would end the DTLS transport's receive loop
                logger.exception("feedback %r for consumer %s failed", packet, self.consumer.id)
