"""Every use of aiortc and aioice internals, in one place.

aiortc is a complete WebRTC endpoint: its ``RTCRtpReceiver`` reassembles and decodes
everything it receives, its ``RTCRtpSender`` pulls frames from a track and encodes them.
An SFU wants neither. It wants aiortc's ICE, DTLS, SRTP, SDP and BUNDLE handling, and then
raw RTP in both directions. The clean seam is the DTLS transport's ``RtpRouter``:

* ``take_over_receiver``: the receiver's ``receive()`` is replaced (on the instance only)
  by one that registers an adapter in the router instead of starting the decoder thread
  and jitter buffer. Decrypted, parsed RTP and the RTCP for that stream reach the adapter.
* ``take_over_sender``: the sender's ``send()`` is replaced by one that registers an
  adapter for its SSRC (so RTCP feedback from the subscriber reaches us) and starts no
  encoder, no RTP task and no RTCP task.
* ``SendPath``: SRTP-protects a ready RTP/RTCP packet and hands it straight to the
  nominated ICE pair's datagram transport. aiortc's own path (``RTCDtlsTransport._send_rtp``)
  goes through three awaited coroutines per packet; this one is a plain function call.

``tests/unit/edge_sfu/media/test_aiortc_seam.py`` checks every attribute and signature used here,
so an aiortc or aioice upgrade fails there first and loudly.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import logging
import random
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import h264 as _h264
from aiortc.codecs import vpx as _vpx
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import RtcpPacket, RtpPacket, is_rtcp

__all__ = [
    "ReceiveParams",
    "RtcpHandler",
    "RtpHandler",
    "RtpPacket",
    "SendParams",
    "SendPath",
    "decoder_thread_running",
    "drain_socket_reads",
    "h264_depayload",
    "h264_packetize",
    "harden_ice_input",
    "install_fast_receive",
    "is_rtcp",
    "keep_sctp_transport",
    "negotiated_codecs",
    "parse_rtcp",
    "parse_rtp_light",
    "restrict_ports",
    "set_msid",
    "take_over_receiver",
    "take_over_sender",
    "vp8_depayload",
]

logger = logging.getLogger(__name__)

# pylibsrtp's cffi module: used to protect into a preallocated buffer (see _Protector)
_srtp_ffi: Any = pylibsrtp._binding.ffi
_srtp_lib: Any = pylibsrtp._binding.lib
_SRTP_MAX_TRAILER: int = int(getattr(pylibsrtp, "SRTP_MAX_TRAILER_LEN", 144))

RtpHandler = Callable[[Any], None]  # gets an RtpPacket or a LightRtpPacket
RtcpHandler = Callable[[Any], None]

ICE_COMPONENT_RTP = 1


@dataclass(frozen=True)
class ReceiveParams:
    """What was negotiated for an incoming stream."""

    mid: str | None
    codecs: dict[int, RTCRtpCodecParameters]
    # RTX SSRC -> media SSRC, as signalled in the remote SDP (ssrc-group FID)
    rtx_ssrcs: dict[int, int] = field(default_factory=dict)
    media_ssrcs: tuple[int, ...] = ()


@dataclass(frozen=True)
class SendParams:
    """What was negotiated for an outgoing stream."""

    mid: str | None
    ssrc: int
    codec: RTCRtpCodecParameters
    cname: str | None


class LightRtpPacket:
    """The RTP header fields the forwarder and aiortc's ``RtpRouter`` read, and the payload.

    Parsing only these (no header-extension objects) is most of what aiortc's
    ``RtpPacket.parse`` costs per packet; forwarded packets drop extensions anyway.
    """

    __slots__ = ("marker", "payload", "payload_type", "sequence_number", "ssrc", "timestamp")

    def __init__(
        self, payload_type: int, marker: int, seq: int, timestamp: int, ssrc: int, payload: bytes
    ) -> None:
        self.payload_type = payload_type
        self.marker = marker
        self.sequence_number = seq
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload


_RTP_FIXED = struct.Struct("!BBHII")


def parse_rtp_light(data: bytes) -> LightRtpPacket:
    """Parse an RTP packet's fixed header, skipping CSRCs, extension and padding.

    Raises ValueError on anything malformed.
    """
    size = len(data)
    if size < 12:
        raise ValueError("RTP packet too short")
    b0, b1, seq, ts, ssrc = _RTP_FIXED.unpack_from(data)
    if b0 >> 6 != 2:
        raise ValueError("RTP version is not 2")
    pos = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if size < pos + 4:
            raise ValueError("RTP extension header truncated")
        pos += 4 + 4 * ((data[pos + 2] << 8) | data[pos + 3])
    end = size
    if b0 & 0x20:
        if size <= pos:
            raise ValueError("RTP padding without payload")
        end -= data[-1]
    if end < pos:
        raise ValueError("RTP packet truncated")
    return LightRtpPacket(b1 & 0x7F, b1 >> 7, seq, ts, ssrc, data[pos:end])


class _ReceiverAdapter:
    """Stands in the RtpRouter where the ``RTCRtpReceiver`` would have been."""

    def __init__(self, on_rtp: RtpHandler, on_rtcp: RtcpHandler) -> None:
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp

    # Called by RTCDtlsTransport._handle_rtp_data for each routed packet.
    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self._on_rtp(packet)

    # Called by RTCDtlsTransport._handle_rtcp_data (sender reports, BYE).
    async def _handle_rtcp_packet(self, packet: Any) -> None:
        self._on_rtcp(packet)

    # Called by RTCDtlsTransport when the connection is lost.
    def _handle_disconnect(self) -> None:
        pass


class _SenderAdapter:
    """Stands in the RtpRouter where the ``RTCRtpSender`` would have been."""

    def __init__(self, ssrc: int, on_rtcp: RtcpHandler) -> None:
        self._ssrc = ssrc  # read by RTCDtlsTransport._register_rtp_sender
        self._on_rtcp = on_rtcp

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        self._on_rtcp(packet)


def take_over_receiver(
    receiver: RTCRtpReceiver,
    on_start: Callable[[ReceiveParams], None],
    on_rtp: RtpHandler,
    on_rtcp: RtcpHandler,
) -> Callable[[], None]:
    """Make ``receiver`` deliver raw RTP to ``on_rtp`` instead of decoding it.

    Must be called before the peer connection starts the receiver (that is, right after
    ``setRemoteDescription``/``setLocalDescription`` returns, before the next await).
    Returns a function that unregisters the adapter.
    """
    adapter = _ReceiverAdapter(on_rtp, on_rtcp)
    state: dict[str, RTCDtlsTransport] = {}

    async def receive(parameters: RTCRtpReceiveParameters) -> None:
        if "dtls" in state:
            return
        dtls = receiver.transport
        state["dtls"] = dtls
        dtls._register_rtp_receiver(adapter, parameters)
        rtx: dict[int, int] = {}
        media: list[int] = []
        for enc in parameters.encodings:
            media.append(enc.ssrc)
            if enc.rtx is not None:
                rtx[enc.rtx.ssrc] = enc.ssrc
        on_start(
            ReceiveParams(
                mid=parameters.muxId,
                codecs={int(c.payloadType or 0): c for c in parameters.codecs},
                rtx_ssrcs=rtx,
                media_ssrcs=tuple(dict.fromkeys(media)),
            )
        )

    receiver.receive = receive  # type: ignore[method-assign]

    def release() -> None:
        dtls = state.get("dtls")
        if dtls is not None:
            dtls._unregister_rtp_receiver(adapter)

    return release


def take_over_sender(
    sender: RTCRtpSender,
    on_start: Callable[[SendParams], None],
    on_rtcp: RtcpHandler,
) -> Callable[[], None]:
    """Make ``sender`` an empty shell: no encoder, no RTP/RTCP tasks; feedback to ``on_rtcp``.

    The SSRC the SDP announces (``sender._ssrc``) is the one the forwarder must use.
    Returns a function that unregisters the adapter.
    """
    adapter = _SenderAdapter(sender._ssrc, on_rtcp)
    state: dict[str, RTCDtlsTransport] = {}

    async def send(parameters: RTCRtpSendParameters) -> None:
        if "dtls" in state:
            return
        dtls = sender.transport
        state["dtls"] = dtls
        dtls._register_rtp_sender(adapter, parameters)
        on_start(
            SendParams(
                mid=parameters.muxId,
                ssrc=sender._ssrc,
                codec=parameters.codecs[0],
                cname=parameters.rtcp.cname,
            )
        )

    sender.send = send  # type: ignore[method-assign]

    def release() -> None:
        dtls = state.get("dtls")
        if dtls is not None:
            dtls._unregister_rtp_sender(adapter)

    return release


class _Protector:
    """SRTP protect into one preallocated buffer: no per-packet allocation but the output.

    pylibsrtp's ``Session.protect`` allocates a length cell and copies the input into its
    buffer on each call; here header and payload are written straight into the buffer
    (no ``header + payload`` concatenation) and protected in place.
    """

    __slots__ = ("_buf", "_cdata", "_len", "_srtp")

    def __init__(self, session: Any) -> None:
        self._srtp = session._srtp[0]
        self._cdata = _srtp_ffi.new("char[]", 1500)
        self._buf = _srtp_ffi.buffer(self._cdata)
        self._len = _srtp_ffi.new("int *")

    def protect_parts(self, header: bytes, payload: bytes) -> bytes | None:
        size = len(header) + len(payload)
        if size > 1500 - _SRTP_MAX_TRAILER:
            return None
        buf = self._buf
        hlen = len(header)
        buf[0:hlen] = header
        buf[hlen:size] = payload
        self._len[0] = size
        if _srtp_lib.srtp_protect(self._srtp, self._cdata, self._len) != 0:
            return None
        return bytes(buf[0 : self._len[0]])


class SendPath:
    """Protect-and-send for one DTLS transport, synchronously.

    ``send_rtp``/``send_rtcp`` return False (and drop the packet) until DTLS has produced
    SRTP keys and ICE has nominated a pair, and after the transport closed. Datagrams go
    to the nominated pair's socket directly; when the socket buffer is full the packet is
    dropped, as a router would.
    """

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._connection = dtls.transport._connection
        self._pair: Any = None
        self._session: Any = None
        self._protector: _Protector | None = None
        self._sendto: Callable[[bytes, tuple[str, int]], Any] | None = None
        self._addr: tuple[str, int] = ("", 0)
        self.packets_sent = 0
        self.packets_dropped = 0

    def _resolve(self) -> bool:
        pair = self._connection._nominated.get(ICE_COMPONENT_RTP)
        self._pair = pair
        if pair is None:
            self._sendto = None
            return False
        transport = pair.protocol.transport
        sock = getattr(transport, "_sock", None)
        # A plain UDP socket (host or server-reflexive pair) is written directly; a TURN
        # relay wraps its datagrams, so it keeps the transport's own sendto.
        if isinstance(sock, socket.socket) and sock.type == socket.SOCK_DGRAM:
            self._sendto = sock.sendto
        else:
            self._sendto = transport.sendto
        self._addr = pair.remote_addr
        return True

    def _ready(self) -> bool:
        dtls = self._dtls
        if dtls._state is not State.CONNECTED or dtls._tx_srtp is None:
            return False
        if dtls._tx_srtp is not self._session:
            self._session = dtls._tx_srtp
            self._protector = _Protector(self._session)
        if self._connection._nominated.get(ICE_COMPONENT_RTP) is not self._pair:
            return self._resolve()
        return self._sendto is not None

    def _send(self, data: bytes) -> bool:
        assert self._sendto is not None
        try:
            self._sendto(data, self._addr)
        except (BlockingIOError, InterruptedError):
            self.packets_dropped += 1
            return False
        except OSError:
            self._pair = None  # the socket went away; resolve again next time
            self.packets_dropped += 1
            return False
        self.packets_sent += 1
        return True

    def send_rtp_parts(self, header: bytes, payload: bytes) -> bool:
        """SRTP-protect ``header + payload`` and send it (the forwarding hot path)."""
        if not self._ready():
            return False
        assert self._protector is not None
        out = self._protector.protect_parts(header, payload)
        if out is None:
            self.packets_dropped += 1
            return False
        return self._send(out)

    def send_rtp(self, data: bytes) -> bool:
        """SRTP-protect one RTP packet and send it."""
        return self.send_rtp_parts(data[:12], data[12:]) if len(data) >= 12 else False

    def send_rtp_many(self, packets: Iterable[bytes]) -> int:
        """Send several RTP packets; returns how many went out."""
        return sum(1 for data in packets if self.send_rtp(data))

    def send_rtcp(self, data: bytes) -> bool:
        """SRTCP-protect one (compound) RTCP packet and send it."""
        if not self._ready():
            return False
        try:
            out = self._dtls._tx_srtp.protect_rtcp(data)
        except (pylibsrtp.Error, ValueError):
            return False
        return self._send(out)


def install_fast_receive(dtls: RTCDtlsTransport) -> None:
    """Handle incoming SRTP synchronously, in the datagram callback.

    aiortc passes each datagram through an ``asyncio.Queue`` and four awaited coroutines
    before a receiver sees it. For SRTP (not SRTCP) on a connected transport this
    unprotects, parses and routes it at once, to the adapters installed by
    ``take_over_receiver``; DTLS, STUN and RTCP keep aiortc's path. Also drops empty
    datagrams (see ``harden_ice_input``).
    """
    connection: Any = dtls.transport._connection
    if getattr(connection, "_edge_sfu_fast", False):
        return
    original = connection.data_received
    router = dtls._rtp_router

    def data_received(data: bytes, component: int) -> None:
        if not data:
            return
        first = data[0]
        if (
            127 < first < 192
            and len(data) >= 12
            and not is_rtcp(data)
            and dtls._state is State.CONNECTED
            and dtls._rx_srtp is not None
        ):
            try:
                packet = parse_rtp_light(dtls._rx_srtp.unprotect(data))
            except Exception:  # forged, replayed or malformed: never the loop's problem
                return
            receiver = router.route_rtp(cast(Any, packet))
            if isinstance(receiver, _ReceiverAdapter):
                try:
                    receiver._on_rtp(packet)
                except Exception:
                    logger.exception("forwarding an RTP packet failed")
            return
        original(data, component)

    connection.data_received = data_received
    connection._edge_sfu_fast = True
    connection._edge_sfu_hardened = True
    for protocol in list(connection._protocols):
        drain_socket_reads(protocol)


MAX_READS_PER_WAKEUP = 64


def drain_socket_reads(protocol: Any) -> bool:
    """Read every queued datagram when the socket becomes readable, not just one.

    asyncio's datagram transport reads one datagram per event-loop iteration. A video
    frame arrives as a burst of packets; reading the burst in one go saves an epoll round
    per packet and sends the forwarded copies out as a burst too, which costs the kernel
    far less than waking each receiver once per packet. Returns whether it was installed.
    """
    transport: Any = getattr(protocol, "transport", None)
    sock = getattr(transport, "_sock", None)
    loop = getattr(transport, "_loop", None)
    if not isinstance(sock, socket.socket) or sock.type != socket.SOCK_DGRAM or loop is None:
        return False
    if getattr(transport, "_edge_sfu_drain", False) or transport.is_closing():
        return False
    recvfrom = sock.recvfrom
    max_size = int(getattr(transport, "max_size", 256 * 1024))
    component = protocol.local_candidate.component

    def read_ready() -> None:
        for _ in range(MAX_READS_PER_WAKEUP):
            if transport._conn_lost:
                return
            try:
                data, addr = recvfrom(max_size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                protocol.error_received(exc)
                return
            try:
                if data and 127 < data[0] < 192:
                    # SRTP/SRTCP can never be STUN (RFC 7983): skip aioice's parse attempt
                    protocol.receiver.data_received(data, component)
                else:
                    protocol.datagram_received(data, addr)
            except Exception:
                logger.exception("handling a datagram failed")

    # the public add_reader refuses a descriptor owned by a transport: swap its callback
    fd = sock.fileno()
    loop._remove_reader(fd)
    loop._add_reader(fd, read_ready)
    transport._edge_sfu_drain = True
    return True


def negotiated_codecs(transceiver: Any) -> list[RTCRtpCodecParameters]:
    """The codecs offer/answer settled on for a transceiver (empty before)."""
    return list(getattr(transceiver, "_codecs", []) or [])


def set_msid(sender: RTCRtpSender, stream_id: str, track_id: str) -> None:
    """Set what the SDP's ``a=msid`` says for a track-less sender: stream and track ids."""
    sender._stream_id = stream_id
    sender._track_id = track_id


def harden_ice_input(dtls: RTCDtlsTransport) -> None:
    """Drop empty datagrams before they reach aiortc.

    aioice hands any non-STUN datagram arriving at a candidate's port to the connection,
    whatever its source. ``RTCDtlsTransport._recv_next`` then reads ``data[0]``: an empty
    UDP datagram raises IndexError there, which ends the transport's receive loop and so
    the whole peer connection. One stray packet must not do that.
    """
    connection: Any = dtls.transport._connection
    if getattr(connection, "_edge_sfu_hardened", False):
        return
    original = connection.data_received

    def data_received(data: bytes, component: int) -> None:
        if data:
            original(data, component)

    connection.data_received = data_received
    connection._edge_sfu_hardened = True


def keep_sctp_transport(pc: RTCPeerConnection) -> None:
    """Stop aiortc from closing the one bundled transport when SCTP came first.

    With ``max-bundle``, a data channel made before any transceiver gets its own DTLS
    transport, and later transceivers share it. aiortc marks the transceivers bundled but
    not the SCTP transport; when an answer lists an audio or video ``mid`` first, aiortc
    "re-homes" SCTP onto the primary transport, which is the same object, and stops it as
    an old one: ICE never starts and nothing connects. Marking SCTP bundled skips that
    step (the flag is read nowhere else but for trickled candidates, which we never use).
    """
    sctp: Any = pc.sctp
    if sctp is not None:
        sctp._bundled = True


def parse_rtcp(data: bytes) -> list[Any]:
    """Parse a compound RTCP packet with aiortc's parser (raises ValueError)."""
    try:
        return RtcpPacket.parse(data)
    except Exception as exc:  # struct.error and IndexError escape aiortc's checks
        raise ValueError(str(exc)) from exc


def h264_packetize(access_unit: bytes) -> list[bytes]:
    """Split an Annex B access unit into RFC 6184 payloads (STAP-A / FU-A), no encoder."""
    enc = _h264.H264Encoder
    return enc._packetize(enc._split_bitstream(access_unit))


def h264_depayload(payload: bytes) -> bytes:
    """One RTP payload back to Annex B bytes (start codes included)."""
    return _h264.h264_depayload(payload)


def vp8_depayload(payload: bytes) -> bytes:
    """One RTP payload back to VP8 bitstream bytes."""
    return _vpx.vp8_depayload(payload)


#: aiortc notes a subscriber's PLI/FIR in this private flag and acts on it only when it
#: encodes itself; a sender of pre-encoded frames must read it to know a keyframe is wanted.
_FORCE_KEYFRAME = "_RTCRtpSender__force_keyframe"


def take_keyframe_request(sender: RTCRtpSender) -> bool:
    """Whether the receiver asked ``sender`` for a keyframe since the last call (clears it)."""
    if getattr(sender, _FORCE_KEYFRAME, False):
        setattr(sender, _FORCE_KEYFRAME, False)
        return True
    return False


def decoder_thread_running(receiver: RTCRtpReceiver) -> bool:
    """Whether aiortc started its decoder thread for ``receiver`` (the SFU never should)."""
    thread = getattr(receiver, "_RTCRtpReceiver__decoder_thread", None)
    return thread is not None


# -- UDP port range -------------------------------------------------------------------
#
# aioice binds every candidate socket with ``create_datagram_endpoint(local_addr=(address,
# 0))`` and has no option for a port range. While one of our ICE connections gathers, a
# context variable holds the range, and a wrapper around the running loop's
# ``create_datagram_endpoint`` turns port 0 into a free port from that range. Other code
# in the process (no range in its context) gets the loop's own behaviour.

_PORT_RANGE: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "edge_sfu_udp_port_range", default=None
)


def _install_port_range_hook(loop: asyncio.AbstractEventLoop) -> None:
    if getattr(loop, "_edge_sfu_port_hook", False):
        return
    original = loop.create_datagram_endpoint

    async def create_datagram_endpoint(
        protocol_factory: Any, local_addr: Any = None, remote_addr: Any = None, **kwargs: Any
    ) -> Any:
        port_range = _PORT_RANGE.get()
        if port_range is None or local_addr is None or local_addr[1] != 0 or remote_addr:
            return await original(
                protocol_factory, local_addr=local_addr, remote_addr=remote_addr, **kwargs
            )
        low, high = port_range
        count = high - low + 1
        first = random.randrange(count)
        for i in range(count):
            port = low + (first + i) % count
            try:
                return await original(protocol_factory, local_addr=(local_addr[0], port), **kwargs)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, f"no free UDP port in {low}-{high}")

    cast(Any, loop).create_datagram_endpoint = create_datagram_endpoint
    cast(Any, loop)._edge_sfu_port_hook = True


def restrict_ports(dtls: RTCDtlsTransport, port_range: tuple[int, int]) -> None:
    """Make this transport's ICE connection bind its sockets within ``port_range``.

    Call before it gathers candidates (before ``setLocalDescription``).
    """
    connection: Any = dtls.transport._connection
    if getattr(connection, "_edge_sfu_ports", None) == port_range:
        return
    original = getattr(connection, "_edge_sfu_gcc", None) or connection.get_component_candidates

    async def get_component_candidates(*args: Any, **kwargs: Any) -> Any:
        _install_port_range_hook(asyncio.get_running_loop())
        token = _PORT_RANGE.set(port_range)
        try:
            return await original(*args, **kwargs)
        finally:
            _PORT_RANGE.reset(token)

    connection._edge_sfu_gcc = original
    connection.get_component_candidates = get_component_candidates
    connection._edge_sfu_ports = port_range
