"""An incoming WebRTC track: raw RTP from a remote publisher, turned into MediaPackets."""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from edge_sfu.media import seam
from edge_sfu.media.estimator import ReceiveSideEstimator
from edge_sfu.media.layers import DEFAULT_LAYER, LayerSpec
from edge_sfu.media.packet import (
    CodecInfo,
    KeyframeDetector,
    MediaPacket,
    keyframe_detector,
    vp8_keyframe_size,
)
from edge_sfu.media.producer import Producer

if TYPE_CHECKING:
    from aiortc import RTCRtpCodecParameters

logger = logging.getLogger(__name__)

RTCP_RTPFB: Final = 205
RTCP_PSFB: Final = 206
SUPPORTED: Final = frozenset({"H264", "VP8", "OPUS"})
#: Per-SSRC facts a track keeps at most (rids seen, SSRCs logged): a peer inventing SSRCs
#: costs a log line each up to this many, then nothing.
MAX_SSRCS: Final = 32


def codec_info(codec: RTCRtpCodecParameters) -> CodecInfo:
    """Our view of an aiortc ``RTCRtpCodecParameters``."""
    return CodecInfo(
        mime_type=codec.mimeType,
        clock_rate=codec.clockRate,
        channels=codec.channels,
        parameters={k: v for k, v in codec.parameters.items()},
    )


class _StreamStats:
    """Enough of RFC 3550 A.3 and A.8 to send receiver reports: extended sequence, counts,
    interarrival jitter, LSR."""

    __slots__ = (
        "base",
        "clock",
        "cycles",
        "expected_prior",
        "jitter",
        "last_arrival",
        "last_ts",
        "lsr",
        "lsr_at",
        "max_seq",
        "received",
        "received_prior",
    )

    def __init__(self, seq: int, clock: int, ts: int, arrival: float) -> None:
        self.base = seq
        self.clock = clock
        #: Interarrival jitter in RTP timestamp units (RFC 3550 A.8).
        self.jitter = 0.0
        self.last_ts = ts
        self.last_arrival = arrival
        self.max_seq = seq
        self.cycles = 0
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.lsr = 0
        self.lsr_at = 0.0

    def add(self, seq: int, ts: int, arrival: float) -> None:
        self.received += 1
        delta = (seq - self.max_seq) & 0xFFFF
        if 0 < delta < 0x8000:
            if seq < self.max_seq:
                self.cycles += 0x10000
            self.max_seq = seq
            # Jitter from packets in order only: a retransmission arrives late on purpose.
            ts_delta = ((ts - self.last_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            d = abs((arrival - self.last_arrival) * self.clock - ts_delta)
            self.jitter += (d - self.jitter) / 16
            self.last_ts, self.last_arrival = ts, arrival

    def report_block(self, ssrc: int, now: float) -> bytes:
        extended = self.cycles + self.max_seq
        expected = extended - self.base + 1
        lost = max(0, min(expected - self.received, 0x7FFFFF))
        interval_expected = expected - self.expected_prior
        interval_received = self.received - self.received_prior
        self.expected_prior, self.received_prior = expected, self.received
        interval_lost = interval_expected - interval_received
        fraction = (
            (interval_lost << 8) // interval_expected
            if interval_expected > 0 and interval_lost > 0
            else 0
        )
        dlsr = int((now - self.lsr_at) * 65536) if self.lsr else 0
        return struct.pack(
            "!IB3sIIII",
            ssrc,
            min(fraction, 255),
            lost.to_bytes(3, "big"),
            extended & 0xFFFFFFFF,
            min(int(self.jitter), 0xFFFFFFFF),
            self.lsr,
            dlsr & 0xFFFFFFFF,
        )


class IncomingTrack:
    """One m-line a remote participant sends on, before and after it becomes a producer.

    Packets arriving before ``attach`` (that is, before signaling has matched the track to
    a publication) are dropped. ``remote_track_id`` is the track id from the offer's
    ``a=msid`` line: how signaling matches the m-line to the publication it announced.

    Simulcast: ``layers`` names the rids of the m-line (lowest first); each SSRC that
    arrives with one of those rids (``handle_stream``) carries that layer, and RTX SSRCs are
    tied to their layer by their repaired rid. Simulcast signalled by SSRCs instead
    (``set_ssrc_layers``: an ``a=ssrc-group:SIM``) ties each layer to its SSRC and RTX SSRC,
    and learns each layer's picture size from its first VP8 keyframe (nothing in that SDP
    says it). Without layers the m-line carries one stream,
    ``DEFAULT_LAYER``: its first SSRC (and the RTX SSRC the SDP pairs with it). Packets of
    any other SSRC or rid are dropped, with one log line per SSRC.

    ``set_negotiated_codecs``, ``set_layers``, ``receive_started``, ``handle_stream``,
    ``handle_rtp`` and ``handle_rtcp`` are the engine's internal API, for ``Transport`` and
    the seam's receiver adapter.
    """

    def __init__(
        self,
        mid: str,
        kind: str,
        remote_track_id: str | None,
        send_rtcp: Callable[[bytes], bool],
        *,
        layers: Sequence[LayerSpec] = (),
    ) -> None:
        self.mid = mid
        self.kind = kind
        self.remote_track_id = remote_track_id
        self._send_rtcp = send_rtcp
        self._simulcast: dict[str, LayerSpec] = {spec.name: spec for spec in layers}
        self._rid_of_ssrc: dict[int, str] = {}
        self._repaired_of_ssrc: dict[int, str] = {}
        #: SSRC-signalled simulcast: the layer of each SIM SSRC, the RTX SSRCs of the FID
        #: groups, and the layers whose picture size no keyframe told yet.
        self._layer_by_sim_ssrc: dict[int, str] = {}
        self._sim_rtx: dict[int, int] = {}
        self._unsized: set[str] = set()
        self._logged: set[int] = set()
        self.producer: Producer | None = None
        self.codec: CodecInfo | None = None
        self._codecs: dict[int, RTCRtpCodecParameters] = {}
        self._rtx: dict[int, int] = {}
        self._rtx_pts: dict[int, int] = {}
        self._layer_of_ssrc: dict[int, str] = {}
        self._ssrc_of_layer: dict[str, int] = {}
        self._stats: dict[int, _StreamStats] = {}
        self._detector: KeyframeDetector | None = None
        self._rtcp_ssrc = random.getrandbits(32)
        self.started = False
        self.packets_dropped = 0
        self.on_started: Callable[[IncomingTrack], None] | None = None
        #: Fed with this track's packets (not retransmissions) for the REMB's estimate.
        self.rate_estimator: ReceiveSideEstimator | None = None

    def __repr__(self) -> str:
        return f"IncomingTrack(mid={self.mid!r}, {self.kind}, codec={self.codec})"

    # -- from the transport and the seam (engine-internal API) -----------------------

    def _learn_codecs(self, codecs: dict[int, RTCRtpCodecParameters]) -> None:
        # The first forwardable codec of the negotiated list is the one the publisher
        # sends; a later, more authoritative list (answer, then receive parameters)
        # replaces an earlier one (offer).
        self._codecs = dict(codecs)
        self._rtx_pts = {}
        chosen: CodecInfo | None = None
        for pt, codec in codecs.items():
            name = codec.mimeType.split("/", 1)[1].upper()
            if name == "RTX":
                apt = codec.parameters.get("apt")
                if isinstance(apt, int):
                    self._rtx_pts[pt] = apt
            elif chosen is None and name in SUPPORTED:
                chosen = codec_info(codec)
        if chosen is not None:
            self.codec = chosen
            self._detector = keyframe_detector(chosen)

    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        """The producer's layers: one per simulcast rid, lowest first, else the default."""
        if self._simulcast:
            return tuple(self._simulcast.values())
        return (LayerSpec(DEFAULT_LAYER),)

    def set_layers(self, layers: Sequence[LayerSpec]) -> None:
        """Engine-internal: the simulcast layers (rids) this m-line receives, lowest first;
        empty for one stream. Only before a producer is attached."""
        if self.producer is None:
            self._simulcast = {spec.name: spec for spec in layers}
            self._layer_by_sim_ssrc, self._sim_rtx, self._unsized = {}, {}, set()

    def set_ssrc_layers(self, group: seam.SsrcSimulcast) -> None:
        """Engine-internal: simulcast signalled by SSRCs (lowest layer first); the layers
        are named ``s0``, ``s1``... in that order, their sizes learnt from keyframes. Only
        before a producer is attached."""
        if self.producer is not None:
            return
        names = [f"s{i}" for i in range(len(group.ssrcs))]
        self._simulcast = {name: LayerSpec(name) for name in names}
        self._layer_by_sim_ssrc = dict(zip(group.ssrcs, names, strict=True))
        self._sim_rtx = dict(group.rtx)
        self._rtx.update(self._sim_rtx)
        self._unsized = set(names)

    def set_negotiated_codecs(self, codecs: list[RTCRtpCodecParameters]) -> None:
        """Engine-internal: what offer/answer settled on, until the receiver starts."""
        if codecs and not self.started:
            self._learn_codecs({int(c.payloadType or 0): c for c in codecs})

    @property
    def packets_lost(self) -> int:
        """Packets missing from the publisher's streams so far (RFC 3550's cumulative loss:
        expected less received, so a late packet takes its loss back)."""
        return sum(
            max(0, st.cycles + st.max_seq - st.base + 1 - st.received)
            for st in list(self._stats.values())
        )

    @property
    def packets_received(self) -> int:
        """Packets received from the publisher's streams so far."""
        return sum(st.received for st in list(self._stats.values()))

    @property
    def jitter_s(self) -> float | None:
        """The largest interarrival jitter of the publisher's streams (seconds), or None
        before any packet."""
        streams = list(self._stats.values())
        if not streams:
            return None
        return max(st.jitter / st.clock if st.clock else 0.0 for st in streams)

    def receive_started(self, params: seam.ReceiveParams) -> None:
        """Engine-internal: the receiver started, with its final parameters."""
        self._learn_codecs(params.codecs)
        # aiortc keeps the first FID group only: the other layers' come from the SDP
        self._rtx = {**params.rtx_ssrcs, **self._sim_rtx}
        self.started = True
        if self.on_started is not None:
            self.on_started(self)

    def handle_rtp(self, packet: seam.LightRtpPacket | seam.RtpPacket) -> None:
        """Engine-internal: one RTP packet from the publisher (the receiving hot path)."""
        producer = self.producer
        if producer is None:
            self.packets_dropped += 1
            return
        pt = packet.payload_type
        apt = self._rtx_pts.get(pt)
        if apt is not None:
            original = self._rtx.get(packet.ssrc)
            if original is None:
                original = self._repaired_stream(packet.ssrc)
            if original is None or len(packet.payload) < 2:
                return
            payload = packet.payload
            packet = seam.LightRtpPacket(
                apt,
                packet.marker,
                (payload[0] << 8) | payload[1],
                packet.timestamp,
                original,
                payload[2:],
            )
        elif pt not in self._codecs:
            return
        payload = packet.payload
        if not payload:
            return  # padding-only probe
        ssrc = packet.ssrc
        layer = self._layer_of_ssrc.get(ssrc)
        if layer is None:
            layer = self._new_media_stream(ssrc)
            if layer is None:
                return
        arrival = seam.arrival_time()  # the kernel's stamp: jitter and estimates read it
        stats = self._stats.get(ssrc)
        if stats is None:
            stats = self._stats[ssrc] = _StreamStats(
                packet.sequence_number, producer.codec.clock_rate, packet.timestamp, arrival
            )
        stats.add(packet.sequence_number, packet.timestamp, arrival)
        estimator = self.rate_estimator
        if estimator is not None and apt is None:
            # after the burst's copies have left: forwarding does not wait for it
            seam.after_sends(estimator.on_rtp, packet.timestamp, stats.clock, arrival, len(payload))
        detector = self._detector
        keyframe = detector(payload) if detector is not None else True
        if keyframe and self._unsized and layer in self._unsized:
            self._learn_size(producer, layer, payload)
        producer.receive(
            MediaPacket(
                payload,
                packet.sequence_number,
                packet.timestamp,
                packet.marker,
                keyframe,
                layer,
                arrival,
            )
        )

    def _learn_size(self, producer: Producer, layer: str, payload: bytes) -> None:
        # the first keyframe of an SSRC-signalled layer says how large its picture is
        if self.codec is None or self.codec.name != "VP8":
            self._unsized.discard(layer)  # only VP8 is sent this way
            return
        size = vp8_keyframe_size(payload)
        if size is not None:
            self._unsized.discard(layer)
            producer.set_layer_size(layer, *size)

    @property
    def level_handler(self) -> seam.LevelHandler | None:
        """Engine-internal: ``handle_level`` for an audio m-line, None for video (whose
        packets are then not searched for an audio level)."""
        return self.handle_level if self.kind == "audio" else None

    def handle_level(self, level: int) -> None:
        """Engine-internal: the RFC 6464 level (-dBov) of the packet about to arrive."""
        producer = self.producer
        if producer is not None and producer.level is not None:
            producer.level.add(level, time.monotonic())

    def handle_stream(self, ssrc: int, rid: str | None, repaired_rid: str | None) -> bool:
        """Engine-internal: a new SSRC arrived with these rids (from its header extensions).

        Returns whether nothing more is to be learnt about it: True without simulcast (an
        SSRC's role is settled by the order of arrival; a repaired rid still ties an RTX
        SSRC to it), True once a rid or repaired rid was seen; False for a simulcast SSRC
        without either yet (the next packet may carry it).
        """
        if len(self._rid_of_ssrc) + len(self._repaired_of_ssrc) >= MAX_SSRCS:
            self._log_once(ssrc, "too many SSRCs")
            return True
        if rid is not None:
            self._rid_of_ssrc[ssrc] = rid
        if repaired_rid is not None:
            self._repaired_of_ssrc[ssrc] = repaired_rid
        return (
            not self._simulcast
            or bool(self._layer_by_sim_ssrc)  # SSRCs say it all
            or rid is not None
            or repaired_rid is not None
        )

    def _new_media_stream(self, ssrc: int) -> str | None:
        # A media SSRC not seen before: which layer it carries, if any.
        if not self._simulcast:
            if self._ssrc_of_layer:
                self._log_once(ssrc, "a second stream on a one-stream m-line")
                return None
            layer = DEFAULT_LAYER
        elif self._layer_by_sim_ssrc:
            found = self._layer_by_sim_ssrc.get(ssrc)
            if found is None:
                self._log_once(ssrc, "not in the SIM group")
                return None
            layer = found
        else:
            rid = self._rid_of_ssrc.get(ssrc)
            if rid is None or rid not in self._simulcast:
                self._log_once(ssrc, f"rid {rid!r} not offered" if rid else "no rid")
                return None
            if rid in self._ssrc_of_layer:
                self._log_once(ssrc, f"rid {rid!r} already has an SSRC")
                return None
            layer = rid
        self._layer_of_ssrc[ssrc] = layer
        self._ssrc_of_layer[layer] = ssrc
        return layer

    def _repaired_stream(self, rtx_ssrc: int) -> int | None:
        # The media SSRC an unsignalled RTX SSRC repairs, by its repaired rid.
        rid = self._repaired_of_ssrc.get(rtx_ssrc)
        if rid is None:
            media = None
        elif self._simulcast:
            media = self._ssrc_of_layer.get(rid)
        else:  # one stream sent on a simulcast m-line's lowest rid
            media = self._ssrc_of_layer.get(DEFAULT_LAYER)
            if self._rid_of_ssrc.get(media or 0) != rid:
                media = None
        if media is None:
            self._log_once(rtx_ssrc, f"retransmissions for unknown rid {rid!r}")
            return None
        self._rtx[rtx_ssrc] = media
        return media

    def _log_once(self, ssrc: int, why: str) -> None:
        if ssrc not in self._logged and len(self._logged) < MAX_SSRCS:
            self._logged.add(ssrc)
            logger.info("track %s: ignoring SSRC %d: %s", self.mid, ssrc, why)

    def handle_rtcp(self, packet: seam.AnyRtcpPacket) -> None:
        """Engine-internal: RTCP from the publisher; sender reports give the clock."""
        if not isinstance(packet, seam.RtcpSrPacket) or self.producer is None:
            return
        layer = self._layer_of_ssrc.get(packet.ssrc)
        if layer is None:
            return
        info = packet.sender_info
        ntp = (info.ntp_timestamp >> 32) + (info.ntp_timestamp & 0xFFFFFFFF) / (1 << 32)
        self.producer.set_sync(layer, ntp, info.rtp_timestamp)
        stats = self._stats.get(packet.ssrc)
        if stats is not None:
            stats.lsr = (info.ntp_timestamp >> 16) & 0xFFFFFFFF
            stats.lsr_at = time.monotonic()

    # -- upstream requests -----------------------------------------------------------

    def attach(self, producer: Producer) -> None:
        """Deliver this track's packets to ``producer`` from now on."""
        self.producer = producer

    def request_keyframe(self, layer: str) -> None:
        """Send a PLI for ``layer`` to the publisher."""
        ssrc = self._ssrc_of_layer.get(layer)
        if ssrc is not None:
            self._send_rtcp(_psfb(1, self._rtcp_ssrc, ssrc, b""))

    def request_retransmission(self, layer: str, seqs: list[int]) -> None:
        """Send a NACK for ``seqs`` of ``layer`` to the publisher."""
        ssrc = self._ssrc_of_layer.get(layer)
        if ssrc is not None and seqs:
            self._send_rtcp(nack_packet(self._rtcp_ssrc, ssrc, seqs))

    def receiver_report(self) -> bytes | None:
        """An RTCP RR for the streams received so far (the publisher's stats rely on it)."""
        if not self._stats:
            return None
        now = time.monotonic()
        blocks = b"".join(st.report_block(ssrc, now) for ssrc, st in list(self._stats.items())[:31])
        body = struct.pack("!I", self._rtcp_ssrc) + blocks
        return struct.pack("!BBH", 0x80 | min(len(self._stats), 31), 201, len(body) // 4) + body

    def bitrate_hint(self, bitrate: int) -> bytes | None:
        """A REMB telling the publisher it may send up to ``bitrate`` bit/s."""
        if not self._ssrc_of_layer:
            return None
        ssrcs = list(self._ssrc_of_layer.values())
        exp = 0
        mantissa = bitrate
        while mantissa > 0x3FFFF:
            mantissa >>= 1
            exp += 1
        fci = b"REMB" + struct.pack(
            "!BBH", len(ssrcs), (exp << 2) | (mantissa >> 16), mantissa & 0xFFFF
        )
        fci += b"".join(struct.pack("!I", s) for s in ssrcs)
        return _psfb(15, self._rtcp_ssrc, 0, fci)


def _psfb(fmt: int, ssrc: int, media_ssrc: int, fci: bytes) -> bytes:
    body = struct.pack("!II", ssrc, media_ssrc) + fci
    return struct.pack("!BBH", 0x80 | fmt, RTCP_PSFB, len(body) // 4) + body


def nack_packet(ssrc: int, media_ssrc: int, seqs: list[int]) -> bytes:
    """A generic NACK (RFC 4585) for the 16-bit sequence numbers ``seqs``."""
    body = struct.pack("!II", ssrc, media_ssrc)
    ordered = sorted(set(s & 0xFFFF for s in seqs))
    i = 0
    while i < len(ordered):
        pid = ordered[i]
        blp = 0
        i += 1
        while i < len(ordered) and 0 < ((ordered[i] - pid) & 0xFFFF) <= 16:
            blp |= 1 << (((ordered[i] - pid) & 0xFFFF) - 1)
            i += 1
        body += struct.pack("!HH", pid, blp)
    return struct.pack("!BBH", 0x80 | 1, RTCP_RTPFB, len(body) // 4) + body
