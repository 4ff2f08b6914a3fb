"""Receiving without aiortc's decoder: raw RTP and RTCP from a taken-over ``RTCRtpReceiver``.

``take_over_receiver`` replaces the receiver's ``receive()`` (on the instance only) by one
that registers an adapter in the DTLS transport's ``RtpRouter`` instead of starting the
decoder thread and jitter buffer. Decrypted, parsed RTP and the RTCP for that stream
reach the adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import RTCRtpReceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters

from edge_sfu.media.seam.extensions import EXT_REPAIRED_RTP_STREAM_ID, EXT_RTP_STREAM_ID
from edge_sfu.media.seam.packets import AnyRtcpPacket, LightRtpPacket, RtpPacket

RtpHandler = Callable[[LightRtpPacket | RtpPacket], None]
RtcpHandler = Callable[[AnyRtcpPacket], None]
#: Told of each new SSRC on the m-line, before its first packet reaches the ``RtpHandler``:
#: (ssrc, rid, repaired rid) from the packet's header extensions (None when absent).
#: Returns whether the SSRC is settled; if not, the next packet of that SSRC asks again.
StreamHandler = Callable[[int, str | None, str | None], bool]
#: Told of the RFC 6464 audio level (-dBov, 0 to 127) of each RTP packet that carries one,
#: before the packet reaches the ``RtpHandler``. Only given for audio m-lines.
LevelHandler = Callable[[int], None]

#: SSRCs an adapter remembers as settled; more (a peer inventing SSRCs) are asked about
#: per packet, which costs a parse but no memory.
MAX_STREAMS = 32


@dataclass(frozen=True)
class ReceiveParams:
    """What was negotiated for an incoming stream."""

    mid: str | None
    codecs: dict[int, RTCRtpCodecParameters]
    # RTX SSRC -> media SSRC, as signalled in the remote SDP (ssrc-group FID)
    rtx_ssrcs: dict[int, int] = field(default_factory=dict)


class ReceiverAdapter:
    """Stands in the RtpRouter where the ``RTCRtpReceiver`` would have been.

    Seam-internal: ``ingress`` calls ``_on_rtp`` directly on its fast path, after
    ``_new_stream`` for an SSRC not in ``_streams``.
    """

    def __init__(
        self,
        on_rtp: RtpHandler,
        on_rtcp: RtcpHandler,
        on_stream: StreamHandler | None,
        on_level: LevelHandler | None = None,
    ) -> None:
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._on_stream = on_stream
        #: ``ingress`` reads the audio level extension only when this is set.
        self._on_level = on_level
        self._streams: set[int] = set()

    def _retarget(
        self,
        on_rtp: RtpHandler,
        on_rtcp: RtcpHandler,
        on_stream: StreamHandler | None,
        on_level: LevelHandler | None,
    ) -> None:
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._on_stream = on_stream
        self._on_level = on_level
        self._streams = set()

    def _new_stream(self, ssrc: int, extensions: dict[int, bytes]) -> None:
        settled = True
        if self._on_stream is not None:
            rid = _ascii(extensions.get(EXT_RTP_STREAM_ID))
            repaired = _ascii(extensions.get(EXT_REPAIRED_RTP_STREAM_ID))
            settled = self._on_stream(ssrc, rid, repaired)
        if settled and len(self._streams) < MAX_STREAMS:
            self._streams.add(ssrc)

    # Called by RTCDtlsTransport._handle_rtp_data for each routed packet (not connected yet).
    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.ssrc not in self._streams:
            extensions = packet.extensions
            found: dict[int, bytes] = {}
            if isinstance(extensions.rtp_stream_id, str):
                found[EXT_RTP_STREAM_ID] = extensions.rtp_stream_id.encode()
            if isinstance(extensions.repaired_rtp_stream_id, str):
                found[EXT_REPAIRED_RTP_STREAM_ID] = extensions.repaired_rtp_stream_id.encode()
            self._new_stream(packet.ssrc, found)
        level = packet.extensions.audio_level
        if self._on_level is not None and isinstance(level, tuple) and len(level) == 2:
            self._on_level(int(level[1]) & 0x7F)
        self._on_rtp(packet)

    # Called by RTCDtlsTransport._handle_rtcp_data (sender reports, BYE).
    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        self._on_rtcp(packet)

    # Called by RTCDtlsTransport when the connection is lost.
    def _handle_disconnect(self) -> None:
        pass


def _ascii(value: bytes | None) -> str | None:
    # rids are short alphanumeric tokens (RFC 8851); anything else is no rid at all
    if not value or len(value) > 255:
        return None
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return None


def take_over_receiver(
    receiver: RTCRtpReceiver,
    on_start: Callable[[ReceiveParams], None],
    on_rtp: RtpHandler,
    on_rtcp: RtcpHandler,
    on_stream: StreamHandler | None = None,
    on_level: LevelHandler | None = None,
) -> Callable[[], None]:
    """Make ``receiver`` deliver raw RTP to ``on_rtp`` instead of decoding it.

    ``on_stream`` learns each new SSRC with its rid and repaired rid (simulcast);
    ``on_level`` the audio level of each packet that carries one (audio m-lines).

    Must be called before the peer connection starts the receiver (that is, right after
    ``setRemoteDescription``/``setLocalDescription`` returns, before the next await).
    Returns a function that unregisters the adapter. ``retarget_receiver`` later hands the
    same receiver (and m-line) to other handlers.
    """
    adapter = ReceiverAdapter(on_rtp, on_rtcp, on_stream, on_level)
    state = _TakeOver(adapter, on_start)

    async def receive(parameters: RTCRtpReceiveParameters) -> None:
        if state.dtls is not None:
            return
        dtls = receiver.transport
        state.dtls = dtls
        dtls._register_rtp_receiver(adapter, parameters)
        rtx: dict[int, int] = {}
        for enc in parameters.encodings:
            if enc.rtx is not None:
                rtx[enc.rtx.ssrc] = enc.ssrc
        state.params = ReceiveParams(
            mid=parameters.muxId,
            codecs={int(c.payloadType or 0): c for c in parameters.codecs},
            rtx_ssrcs=rtx,
        )
        state.on_start(state.params)

    receiver.receive = receive  # type: ignore[method-assign]
    receiver._edge_sfu_takeover = state  # type: ignore[attr-defined]

    def release() -> None:
        if state.dtls is not None:
            state.dtls._unregister_rtp_receiver(adapter)

    return release


@dataclass
class _TakeOver:
    adapter: ReceiverAdapter
    on_start: Callable[[ReceiveParams], None]
    dtls: RTCDtlsTransport | None = None
    params: ReceiveParams | None = None


def retarget_receiver(
    receiver: RTCRtpReceiver,
    on_start: Callable[[ReceiveParams], None],
    on_rtp: RtpHandler,
    on_rtcp: RtcpHandler,
    on_stream: StreamHandler | None = None,
    on_level: LevelHandler | None = None,
) -> ReceiveParams | None:
    """Send what a taken-over ``receiver`` gets to other handlers from now on.

    aiortc starts a receiver once per m-line; an m-line reused for another stream keeps
    its registration in the transport's router (mid, SSRCs, payload types) and only the
    handlers change. Returns the parameters it started with, or None if it has not started
    yet (then ``on_start`` is called when it does).
    """
    state: _TakeOver = receiver._edge_sfu_takeover  # type: ignore[attr-defined]
    state.on_start = on_start
    state.adapter._retarget(on_rtp, on_rtcp, on_stream, on_level)
    return state.params
