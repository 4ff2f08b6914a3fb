"""Sending without aiortc's encoder: a taken-over ``RTCRtpSender`` and a synchronous send path.

* ``take_over_sender``: the sender's ``send()`` is replaced by one that registers an
  adapter for its SSRC (so RTCP feedback from the subscriber reaches us) and starts no
  encoder, no RTP task and no RTCP task.
* ``SendPath``: SRTP-protects a ready RTP/RTCP packet and hands it straight to the
  nominated ICE pair's socket (RTP in batches, see ``egress``). aiortc's own path
  (``RTCDtlsTransport._send_rtp``) goes through three awaited coroutines per packet; this
  one is a plain function call.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pylibsrtp
from aiortc import RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters

from edge_sfu.media.seam.egress import BatchWriter, SentHandler, with_transport_sequence
from edge_sfu.media.seam.pacing import Pacer
from edge_sfu.media.seam.packets import AnyRtcpPacket
from edge_sfu.media.seam.receive import RtcpHandler

# pylibsrtp's cffi module: used to protect into a preallocated buffer (see _Protector)
_srtp_ffi: Any = pylibsrtp._binding.ffi
_srtp_lib: Any = pylibsrtp._binding.lib
_SRTP_MAX_TRAILER: int = int(getattr(pylibsrtp, "SRTP_MAX_TRAILER_LEN", 144))

ICE_COMPONENT_RTP = 1


@dataclass(frozen=True)
class SendParams:
    """What was negotiated for an outgoing stream."""

    mid: str | None
    ssrc: int
    codec: RTCRtpCodecParameters
    cname: str | None


class _SenderAdapter:
    """Stands in the RtpRouter where the ``RTCRtpSender`` would have been."""

    def __init__(self, ssrc: int, on_rtcp: RtcpHandler) -> None:
        self._ssrc = ssrc  # read by RTCDtlsTransport._register_rtp_sender
        self._on_rtcp = on_rtcp

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        self._on_rtcp(packet)


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

    ``send_rtp_parts``/``send_rtcp`` return False (and drop the packet) until DTLS has
    produced SRTP keys and ICE has nominated a pair, and after the transport closed.
    Datagrams go to the nominated pair's socket directly; when the socket buffer is full
    the packet is dropped, as a router would.

    RTP goes out in batches where the platform allows (``egress.BatchWriter``): protected
    at once into the path's arena, in call order (so transport-wide sequence numbers leave
    in the order they were assigned), and sent at the end of the burst being handled.
    RTCP, a TURN relay, and every packet when batching is off
    (``EDGE_SFU_PLAIN_SEND=1``) go out at once, one ``sendto`` each.
    """

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._connection = dtls.transport._connection
        self._pair: Any = None
        self._session: Any = None
        self._protector: _Protector | None = None
        self._writer: BatchWriter | None = None
        self._sendto: Callable[[bytes, tuple[str, int]], Any] | None = None
        self._addr: tuple[str, int] = ("", 0)
        self._sent = 0
        self._dropped = 0
        # transport-wide congestion control: extension id, next sequence number, listener
        self._twcc_id = 0
        self._twcc_seq = 0
        self._on_sent: SentHandler | None = None
        # set while the transport's estimate binds (``set_pacing``)
        self._pacer: Pacer | None = None
        self._paced_before = 0  # packets_paced of pacers this path had before

    @property
    def packets_sent(self) -> int:
        """Datagrams handed to the kernel."""
        writer = self._writer
        return self._sent + (writer.packets_sent if writer is not None else 0)

    @property
    def packets_dropped(self) -> int:
        """Packets not sent: no keys or pair yet, SRTP refused, or the socket was full."""
        writer = self._writer
        return self._dropped + (writer.packets_dropped if writer is not None else 0)

    @property
    def batched(self) -> bool:
        """Whether RTP currently goes out in batches (False: one ``sendto`` each)."""
        return self._writer is not None

    def enable_transport_cc(self, ext_id: int, on_sent: SentHandler) -> None:
        """Number every RTP packet from now on with a transport-wide sequence number
        (header extension ``ext_id``, negotiated with the participant) and report each to
        ``on_sent`` as it leaves. One counter per transport, whatever the stream."""
        if 1 <= ext_id <= 14:
            self._twcc_id = ext_id
            self._on_sent = on_sent
            if self._writer is not None:
                self._writer.set_sent_handler(on_sent)

    @property
    def pacer(self) -> Pacer | None:
        """The pacer while RTP is paced, else None."""
        return self._pacer

    @property
    def packets_paced(self) -> int:
        """RTP packets that went through a pacer on this path so far."""
        pacer = self._pacer
        return self._paced_before + (pacer.packets_paced if pacer is not None else 0)

    def set_pacing(self, rate_bps: int | None) -> None:
        """Pace RTP at ``rate_bps`` from now on (``pacing.Pacer``: urgent packets first,
        bursts spread), or send each packet at once again (None: what was queued leaves
        now). Padding sent to probe the link is not paced (it carries its own rate) but
        queues behind media that waits."""
        pacer = self._pacer
        if rate_bps is None or rate_bps <= 0:
            if pacer is not None:
                self._pacer = None
                pacer.drain()
                self._paced_before += pacer.packets_paced
            return
        if pacer is None:
            self._pacer = Pacer(self._send_rtp_now, rate_bps)
        else:
            pacer.set_rate(rate_bps)

    def close(self) -> None:
        """Drop what the pacer holds (the transport closed)."""
        pacer, self._pacer = self._pacer, None
        if pacer is not None:
            pacer.clear()

    def flush(self) -> None:
        """Send what this path has queued now."""
        if self._writer is not None:
            self._writer.flush()

    def _retire_writer(self) -> None:
        writer = self._writer
        if writer is not None:
            writer.flush()
            self._sent += writer.packets_sent
            self._dropped += writer.packets_dropped
            self._writer = None

    def _resolve(self) -> bool:
        self._retire_writer()
        pair = self._connection._nominated.get(ICE_COMPONENT_RTP)
        self._pair = pair
        if pair is None:
            self._sendto = None
            return False
        transport = pair.protocol.transport
        sock = getattr(transport, "_sock", None)
        self._addr = pair.remote_addr
        # A plain UDP socket (host or server-reflexive pair) is written directly; a TURN
        # relay wraps its datagrams, so it keeps the transport's own sendto.
        if isinstance(sock, socket.socket) and sock.type == socket.SOCK_DGRAM:
            self._sendto = sock.sendto
            self._writer = BatchWriter.create(sock, self._addr, self._session)
            if self._writer is not None:
                self._writer.set_sent_handler(self._on_sent)
        else:
            self._sendto = transport.sendto
        return True

    def _ready(self) -> bool:
        dtls = self._dtls
        if dtls._state is not State.CONNECTED or dtls._tx_srtp is None:
            self._retire_writer()
            return False
        if dtls._tx_srtp is not self._session:
            self._retire_writer()
            self._pair = None  # the writer protects with the session: make it anew
            self._session = dtls._tx_srtp
            self._protector = _Protector(self._session)
        if self._connection._nominated.get(ICE_COMPONENT_RTP) is not self._pair:
            return self._resolve()
        writer = self._writer
        if writer is not None and writer.dead:
            return self._resolve()
        return self._sendto is not None

    def _send(self, data: bytes) -> bool:
        assert self._sendto is not None
        try:
            self._sendto(data, self._addr)
        except (BlockingIOError, InterruptedError):
            self._dropped += 1
            return False
        except OSError:
            self._pair = None  # the socket went away; resolve again next time
            self._dropped += 1
            return False
        self._sent += 1
        return True

    def send_rtp_parts(
        self, header: bytes, payload: bytes, probe: bool = False, urgent: bool = False
    ) -> bool:
        """SRTP-protect ``header + payload`` and send it (the forwarding hot path);
        ``probe`` marks padding sent to probe the link, ``urgent`` a packet the pacer (if
        any) sends first (audio, a retransmission). True once it is sent or queued (to
        leave with the burst, or by the pacer)."""
        if not self._ready():
            return False
        pacer = self._pacer
        if pacer is not None and (not probe or pacer.queued_packets):
            # padding is not paced (it carries the probe's own rate) unless media waits:
            # then it queues behind it, or its sequence numbers would overtake the frame's
            pacer.push(header, payload, urgent, probe)
            return True
        return self._send_ready(header, payload, probe)

    def _send_rtp_now(self, header: bytes, payload: bytes, probe: bool = False) -> bool:
        # the pacer's way out: the path may have changed since the packet was queued
        if not self._ready():
            return False
        return self._send_ready(header, payload, probe)

    def _send_ready(self, header: bytes, payload: bytes, probe: bool) -> bool:
        # ``_ready()`` has just held: checked once per copy, not twice (the hot path)
        ext_id = self._twcc_id
        seq = -1
        if ext_id and not header[0] & 0x10:  # a header with an extension goes as it is
            seq = self._twcc_seq
            self._twcc_seq = (seq + 1) & 0xFFFF
        writer = self._writer
        if writer is not None:
            if writer.queue(header, payload, ext_id if seq >= 0 else 0, seq, probe):
                return True
            self._dropped += 1
            return False
        if seq >= 0:
            numbered = with_transport_sequence(header, ext_id, seq)
            assert numbered is not None  # the header had no extension
            header = numbered
        assert self._protector is not None
        out = self._protector.protect_parts(header, payload)
        if out is None:
            self._dropped += 1
            return False
        sent = self._send(out)
        if seq >= 0 and self._on_sent is not None:
            # a packet the socket refused counts as sent and lost: feedback will say so
            self._on_sent(time.monotonic(), [(seq, len(header) + len(payload), probe)])
        return sent

    def send_rtcp(self, data: bytes) -> bool:
        """SRTCP-protect one (compound) RTCP packet and send it."""
        if not self._ready():
            return False
        try:
            out = self._dtls._tx_srtp.protect_rtcp(data)
        except (pylibsrtp.Error, ValueError):
            return False
        return self._send(out)
