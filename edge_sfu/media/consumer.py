"""A consumer that sends to a remote WebRTC subscriber: header rewriting, NACK, SR, PLI."""

from __future__ import annotations

import logging
import random
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from edge_sfu.media import seam
from edge_sfu.media.consumer_base import LAYER_SILENT_S, ConsumerBase
from edge_sfu.media.packet import NTP_EPOCH_OFFSET, RTP_HEADER, MediaPacket, vp8_rewrite_ids
from edge_sfu.media.producer import Producer

logger = logging.getLogger(__name__)

RTCP_SR: Final = 200
RTCP_SDES: Final = 202
RTCP_RTPFB_NACK: Final = 1
RTCP_PSFB_PLI: Final = 1
RTCP_PSFB_FIR: Final = 4
_SR: Final = struct.Struct("!BBHIQIII")
#: Sender reports remembered to match the subscriber's receiver reports (LSR) for the RTT.
_SR_MEMORY: Final = 8
#: Size of one padding-only packet's payload (the most its one-byte length can say).
PADDING_BYTES: Final = 255
#: A packet is not sent again within a round trip of its last retransmission (at least this
#: long, seconds): a NACK that repeats it was sent before the retransmission could arrive.
#: A receiver repeats its NACKs while a packet is missing (Chromium every round trip,
#: aiortc with every new gap, listing every packet still missing); answering each one on a
#: congested link adds a retransmission storm to the overload that caused the loss, and
#: the pacer, which lets nothing wait long, passes it on (libwebrtc and mediasoup skip a
#: packet resent within the RTT for the same reason).
MIN_RESEND_INTERVAL_S: Final = 0.05
#: Before a receiver report gives the RTT, this one is assumed (seconds).
DEFAULT_RTT_S: Final = 0.1
#: The base RTT is the least of the reports of this long (seconds). A report that waited in a
#: busy receiver before it was stamped (or in a busy SFU before it was read) reads a round
#: trip the link never had, alone or for a few seconds; a queue on the link raises every
#: report while it stands.
BASE_RTT_WINDOW_S: Final = 5.0
#: Retransmission times remembered; beyond it the ones older than a second are forgotten.
_RESENT_MEMORY: Final = 512
#: Padding runs remembered to answer NACKs for what was sent before them (a probe pads
#: every half second at most; 16 cover longer than any packet stays worth resending).
_PADDING_MEMORY: Final = 16


def ntp64(seconds: float) -> int:
    """NTP seconds (float) as the 64-bit fixed-point RTCP carries."""
    whole = int(seconds)
    return ((whole & 0xFFFFFFFF) << 32) | int((seconds - whole) * (1 << 32))


class Consumer(ConsumerBase):
    """Forwards one producer to one remote subscriber's ``RTCRtpSender`` slot.

    Sequence numbers and timestamps are rewritten as ``source + offset``; the offsets are
    re-based at every layer switch (and source change) so the subscriber sees one
    continuous stream: the sequence number after a switch is the last one sent plus one,
    the timestamp advances by the wall time elapsed.

    ``send_started`` and ``handle_rtcp`` are the engine's internal API, for the seam's
    sender adapter.
    """

    def __init__(
        self,
        producer: Producer,
        consumer_id: str,
        get_send_path: Callable[[], seam.SendPath | None],
    ) -> None:
        super().__init__(producer, consumer_id)
        self._get_send_path = get_send_path
        self._path: seam.SendPath | None = None
        self._ssrc = 0
        self._pt = 0
        self._cname = b""
        self._clock = producer.codec.clock_rate
        self._audio = producer.kind == "audio"  # a pacer sends audio first
        self._seq_off = random.getrandbits(16)
        self._ts_off = random.getrandbits(32)
        self._epoch_first = 0  # first source seq forwarded from now on (a switch, padding)
        self._source_first = 0  # first source seq of the current layer epoch (a switch)
        # padding runs sent since the switch, oldest first: (first out seq, count, the
        # sequence offset before it, their timestamp), to map a NACK for a packet sent
        # before one and to answer one for a padding packet
        self._paddings: deque[tuple[int, int, int, int]] = deque()
        self._max_out_seq: int | None = None
        self._frame_end = 0  # the newest packet sent ended a frame (marker): padding may follow
        self._last_out_ts = 0
        self._last_arrival = 0.0
        # VP8 picture numbering, continued across switches as the sequence numbers are
        # (``vp8_rewrite_ids``): the offsets added, and the newest payload sent (its
        # numbers are read at the next switch, not per packet)
        self._vp8 = producer.codec.name == "VP8"
        self._pid_off = 0
        self._tl0_off = 0
        self._last_vp8: bytes | None = None
        self.packets_sent = 0
        self.octets_sent = 0
        self.nacks_received = 0
        self.retransmitted = 0
        #: Packets a NACK asked for again within a round trip of their last retransmission.
        self.resends_skipped = 0
        self._resent: dict[int, float] = {}  # out seq -> when its last retransmission left
        self.plis_received = 0
        self.sender_reports_sent = 0
        #: From the subscriber's latest receiver report: the share of packets lost since
        #: the report before (0..1), the packets lost in all, the interarrival jitter
        #: (seconds) and the round-trip time (seconds). None until a report says.
        self.fraction_lost: float | None = None
        self.packets_lost = 0
        self.jitter_s: float | None = None
        self.rtt_s: float | None = None
        self._rtts: deque[tuple[float, float]] = deque(maxlen=16)  # (when, RTT) of reports
        #: Middle 32 bits of the NTP time of each recent sender report -> when it was sent
        #: (monotonic). The NTP time is the source's clock, so the RTT is measured on ours.
        self._sr_sent: dict[int, float] = {}
        self.ready = False

    # -- negotiation -----------------------------------------------------------------

    def send_started(self, params: seam.SendParams) -> None:
        """Engine-internal: the subscriber's m-line is negotiated; forwarding may start."""
        codec_name = params.codec.mimeType.split("/", 1)[1].upper()
        if codec_name != self.producer.codec.name:
            logger.error(
                "consumer %s negotiated %s for a %s producer; not forwarding",
                self.id,
                params.codec.mimeType,
                self.producer.codec.mime_type,
            )
            return
        self._ssrc = params.ssrc
        self._pt = int(params.codec.payloadType or 0)
        self._cname = (params.cname or "edge-sfu").encode()
        self._path = self._get_send_path()
        self.ready = self._path is not None
        if self.ready and not self.closed:
            self.start()

    #: Where a consumer's output numbering stands: last sequence number sent (None before the
    #: first packet), its RTP timestamp and the arrival time of the packet it came from.
    Numbering = tuple[int | None, int, float]

    def numbering(self) -> Numbering:
        """Engine-internal: where this consumer's output numbering stands."""
        return (self._max_out_seq, self._last_out_ts, self._last_arrival)

    def continue_numbering(self, numbering: Numbering) -> None:
        """Engine-internal: continue the numbering of the consumer that had this m-line.

        The subscriber's decoder sees one SSRC on a reused m-line, so sequence numbers and
        timestamps must go on from where the last consumer stopped (the re-basing at the
        first keyframe then continues from here).
        """
        self._max_out_seq, self._last_out_ts, self._last_arrival = numbering

    # -- forwarding ------------------------------------------------------------------

    def _on_switch(self, packet: MediaPacket, previous: str | None) -> None:
        if self._max_out_seq is not None:
            self._seq_off = (self._max_out_seq + 1 - packet.seq) & 0xFFFF
            gap = max(1, int((packet.arrival - self._last_arrival) * self._clock))
            self._ts_off = (self._last_out_ts + gap - packet.ts) & 0xFFFFFFFF
        self._epoch_first = self._source_first = packet.seq
        self._paddings.clear()
        if self._vp8 and self._last_vp8 is not None:
            _, last_pid, last_tl0 = vp8_rewrite_ids(self._last_vp8, 0, 0)
            _, pid, tl0 = vp8_rewrite_ids(packet.payload, 0, 0)
            if pid is not None and last_pid is not None:
                self._pid_off = (last_pid + 1 - pid) & 0x7FFF
            if tl0 is not None and last_tl0 is not None:
                self._tl0_off = (last_tl0 + 1 - tl0) & 0xFF

    def _forward(self, packet: MediaPacket) -> None:
        # Mirrored in C for the steady state (``seam/_fastpath.c``, ``fan_out``): a change
        # here is a change there; test_fastpath.py compares the two.
        path = self._path
        if path is None:
            self._current = None  # not negotiated yet: start again from a keyframe
            return
        seq = packet.seq
        if ((seq - self._epoch_first) & 0xFFFF) >= 0x8000:
            return  # older than this epoch: it belongs to the previous source
        out_seq = (seq + self._seq_off) & 0xFFFF
        out_ts = (packet.ts + self._ts_off) & 0xFFFFFFFF
        payload = packet.payload
        if self._vp8 and (self._pid_off or self._tl0_off):
            payload = vp8_rewrite_ids(payload, self._pid_off, self._tl0_off)[0]
        if not path.send_rtp_parts(
            RTP_HEADER.pack(0x80, (packet.marker << 7) | self._pt, out_seq, out_ts, self._ssrc),
            payload,
            urgent=self._audio,
        ):
            return
        self.packets_sent += 1
        self.octets_sent += len(payload)
        top = self._max_out_seq
        if top is None or ((out_seq - top) & 0xFFFF) < 0x8000:
            self._max_out_seq = out_seq
            self._last_out_ts = out_ts
            self._last_arrival = packet.arrival
            self._frame_end = packet.marker
            if self._vp8:
                self._last_vp8 = payload

    def send_padding(self, count: int, size: int = PADDING_BYTES) -> int:
        """Engine-internal: ``count`` padding-only packets of ``size`` bytes (probing),
        only between two frames; returns the bytes sent.

        They take the next sequence numbers, so the forwarded stream continues after them
        with its offset moved by ``count``; a NACK for a packet sent before them is still
        answered (``_source_seq`` maps it through the offset then), one for a padding
        packet with a one-byte padding packet (``_padding_ts``). A probe's padding fills
        a short link to more than it carries, so what is lost around it is what most needs
        resending: dropping those NACKs left a subscriber waiting for the next keyframe,
        frozen for seconds. Marked as probes on the transport-wide numbering. A stream
        that is switched off (or waits for a keyframe, or has sent nothing yet) is padded
        too: a subscriber whose every video is off has nothing else to probe with, and
        would stay off after its link recovers.
        """
        path, top = self._path, self._max_out_seq
        if path is None or count <= 0:
            return 0
        if top is None:
            # nothing sent yet: the stream starts here, its first frame continues after it
            top = self._max_out_seq = random.getrandbits(16)
            self._last_out_ts = random.getrandbits(32)
            self._last_arrival = time.monotonic()
        if self._current is not None and not self._frame_end:
            return 0  # inside a frame: padding would split it

        size = min(max(size, 1), 255)
        payload = bytes(size - 1) + bytes((size,))
        sent = 0
        for i in range(count):
            header = RTP_HEADER.pack(
                0xA0, self._pt, (top + 1 + i) & 0xFFFF, self._last_out_ts, self._ssrc
            )
            if path.send_rtp_parts(header, payload, probe=True):
                sent += len(header) + size
        # a late packet from before the padding is not forwarded (its number would be a
        # padding packet's), but it can still be resent when NACKed
        self._epoch_first = (top - self._seq_off + 1) & 0xFFFF
        paddings = self._paddings
        if len(paddings) >= _PADDING_MEMORY:
            first, _, before, _ = paddings.popleft()
            self._source_first = (first - before) & 0xFFFF  # nothing older is mapped
        paddings.append(((top + 1) & 0xFFFF, count, self._seq_off, self._last_out_ts))
        self._seq_off = (self._seq_off + count) & 0xFFFF
        self._max_out_seq = (top + count) & 0xFFFF
        return sent

    # -- feedback from the subscriber ------------------------------------------------

    def handle_rtcp(self, packet: seam.AnyRtcpPacket) -> None:
        """Engine-internal: feedback from the subscriber (NACK, PLI, FIR)."""
        if self.closed:
            return
        if isinstance(packet, seam.RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            # aiortc adds a bitmask's offsets to its packet id without wrapping: a NACK
            # that spans 65535 -> 0 lists numbers up to 65551, and packing one into a
            # header raised in the DTLS transport's receive loop, which ended it: the
            # subscriber's whole connection died.
            self._answer_nack([seq & 0xFFFF for seq in packet.lost])
        elif isinstance(packet, seam.RtcpPsfbPacket) and packet.fmt in (
            RTCP_PSFB_PLI,
            RTCP_PSFB_FIR,
        ):
            self.plis_received += 1
            layer = self._current or self._target
            if layer is not None:
                self.producer.request_keyframe(layer)
        elif isinstance(packet, seam.RtcpRrPacket | seam.RtcpSrPacket):
            for report in packet.reports:
                if report.ssrc == self._ssrc:
                    self._receiver_report(report)

    def _receiver_report(self, report: seam.RtcpReceiverInfo) -> None:
        self.fraction_lost = report.fraction_lost / 256
        self.packets_lost = max(0, report.packets_lost)
        self.jitter_s = report.jitter / self._clock if self._clock else None
        sent_at = self._sr_sent.get(report.lsr) if report.lsr else None
        if sent_at is not None:
            now = time.monotonic()
            self.rtt_s = max(0.0, now - sent_at - report.dlsr / 65536)
            self._rtts.append((now, self.rtt_s))

    def base_rtt_s(self, now: float | None = None) -> float | None:
        """The least RTT the receiver reports of the last ``BASE_RTT_WINDOW_S`` gave (the
        latest, when none is that recent; None before any)."""
        if not self._rtts:
            return None
        since = (time.monotonic() if now is None else now) - BASE_RTT_WINDOW_S
        recent = [rtt for at, rtt in self._rtts if at >= since]
        return min(recent) if recent else self._rtts[-1][1]

    def _answer_nack(self, lost: list[int]) -> None:
        self.nacks_received += 1
        layer_name = self._current
        path = self._path
        if layer_name is None or path is None:
            return
        layer = self.producer.layers[layer_name]
        missing: list[int] = []
        now = time.monotonic()
        resent = self._resent
        if len(resent) > _RESENT_MEMORY:
            self._resent = resent = {s: at for s, at in resent.items() if now - at < 1.0}
        too_soon = now - max(self.rtt_s or DEFAULT_RTT_S, MIN_RESEND_INTERVAL_S)
        # A round trip from when the last copy left, not from when it was queued: behind
        # a pacer's queue the receiver may ask again before that copy has even gone out,
        # and a second copy queued behind the first is pure load on the link that lost the
        # packet (libwebrtc skips a packet whose retransmission is still pending).
        pacer = path.pacer
        leaves = now + pacer.wait_s(urgent=True) if pacer is not None else now
        for out_seq in lost:
            seq = self._source_seq(out_seq)
            padding_ts = self._padding_ts(out_seq) if seq is None else None
            if seq is None and padding_ts is None:
                continue
            if resent.get(out_seq, -1.0) > too_soon:
                self.resends_skipped += 1
                continue
            if padding_ts is not None:
                # A lost padding packet is resent as the smallest padding packet: a
                # receiver that assembles frames strictly in sequence (aiortc's jitter
                # buffer) otherwise holds every later frame of the stream until 128
                # packets have passed the hole, then drops them and asks for a keyframe:
                # behind a short link each probe's lost padding froze a picture there.
                header = RTP_HEADER.pack(0xA0, self._pt, out_seq, padding_ts, self._ssrc)
                if path.send_rtp_parts(header, b"\x01"):
                    resent[out_seq] = leaves
                continue
            if seq is None:
                continue
            cached = layer.cache.get(seq)
            if cached is None:
                missing.append(seq)
                continue
            out_ts = (cached.ts + self._ts_off) & 0xFFFFFFFF
            header = RTP_HEADER.pack(
                0x80, (cached.marker << 7) | self._pt, out_seq, out_ts, self._ssrc
            )
            payload = cached.payload
            if self._vp8 and (self._pid_off or self._tl0_off):
                payload = vp8_rewrite_ids(payload, self._pid_off, self._tl0_off)[0]
            if path.send_rtp_parts(header, payload, urgent=True):
                self.retransmitted += 1
                resent[out_seq] = leaves
        if missing:
            self.producer.request_retransmission(layer_name, missing)

    def _padding_ts(self, out_seq: int) -> int | None:
        """The timestamp of the padding packet sent as ``out_seq``, None if it was not one
        (or is no longer remembered)."""
        for first, count, _, ts in self._paddings:
            if (out_seq - first) & 0xFFFF < count:
                return ts
        return None

    def _source_seq(self, out_seq: int) -> int | None:
        """The source sequence number a sent one came from, or None for a padding packet
        or one from before the current layer epoch."""
        offset = self._seq_off
        for first, count, before, _ in reversed(self._paddings):
            distance = (out_seq - first) & 0xFFFF
            if distance < count:
                return None  # padding: nothing to resend
            if distance < 0x8000:
                break  # sent after this padding: the offset after it holds
            offset = before  # sent before it
        seq = (out_seq - offset) & 0xFFFF
        if ((seq - self._source_first) & 0xFFFF) >= 0x8000:
            return None
        return seq

    # -- sender reports --------------------------------------------------------------

    def sender_report(self, now: float | None = None) -> bytes | None:
        """An RTCP SR + SDES compound packet for this stream, or None if nothing was sent.

        The RTP time is the source's own (from its sender reports when it sends them),
        moved into this consumer's timestamp space, so audio and video of one publisher
        stay in sync at the subscriber.
        """
        if self._current is None or self.packets_sent == 0 or self._path is None:
            return None
        mono = time.monotonic() if now is None else now
        layer = self.producer.layers[self._current]
        sync = layer.sync
        if sync is not None:
            elapsed = mono - sync.local
            ntp = sync.ntp + elapsed
            rtp = sync.rtp + int(elapsed * self._clock)
        else:
            ntp = time.time() + NTP_EPOCH_OFFSET - (time.monotonic() - mono)
            rtp = layer.last_ts + int((mono - layer.last_arrival) * self._clock)
        rtp_out = (rtp + self._ts_off) & 0xFFFFFFFF
        sr = _SR.pack(
            0x80,
            RTCP_SR,
            6,
            self._ssrc,
            ntp64(ntp),
            rtp_out,
            self.packets_sent & 0xFFFFFFFF,
            self.octets_sent & 0xFFFFFFFF,
        )
        return sr + _sdes(self._ssrc, self._cname)

    def send_sender_report(self) -> bool:
        """Send one sender report now."""
        data = self.sender_report()
        if data is None or self._path is None:
            return False
        if self._path.send_rtcp(data):
            self.sender_reports_sent += 1
            ntp_middle = (_SR.unpack_from(data)[4] >> 16) & 0xFFFFFFFF
            self._sr_sent[ntp_middle] = time.monotonic()
            if len(self._sr_sent) > _SR_MEMORY:
                del self._sr_sent[next(iter(self._sr_sent))]
            return True
        return False

    def _release(self) -> None:
        self._path = None
        self.ready = False


def _sdes(ssrc: int, cname: bytes) -> bytes:
    cname = cname[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(cname)) + cname + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    return struct.pack("!BBH", 0x81, RTCP_SDES, len(chunk) // 4) + chunk


# The compiled fan-out copies for this class exactly (a subclass gets ``deliver`` calls).
seam.configure_fan_out(Consumer, LAYER_SILENT_S / 2)
