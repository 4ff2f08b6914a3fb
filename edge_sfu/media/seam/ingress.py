"""Incoming datagrams: SRTP handled in the datagram callback, bursts read at once, junk dropped.

aiortc passes each datagram through an ``asyncio.Queue`` and four awaited coroutines
before a receiver sees it; ``install_fast_receive`` short-cuts that for SRTP, and
``drain_socket_reads`` reads a whole burst per wakeup, each datagram with the time the
kernel received it (``arrival_time``). ``harden_ice_input`` keeps a stray empty datagram
from ending a peer connection.
"""

from __future__ import annotations

import errno
import inspect
import logging
import os
import socket
import struct
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, cast

from aiortc.rtcdtlstransport import RTCDtlsTransport, State

from edge_sfu.media.seam.egress import (
    ReceiveMany,
    after_sends,
    begin_burst,
    compiled_ingest,
    compiled_receive,
    flush_all,
    session_address,
)
from edge_sfu.media.seam.extensions import (
    ExtensionIds,
    audio_level,
    header_extensions,
    transport_sequence,
)
from edge_sfu.media.seam.packets import LightRtpPacket, parse_rtp_light
from edge_sfu.media.seam.receive import ReceiverAdapter

logger = logging.getLogger(__name__)

#: Linux's SO_TIMESTAMPNS (also the control message's type): the kernel stamps each
#: datagram with the wall-clock time it arrived (a ``struct timespec``).
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
_TIMESPEC_32 = struct.Struct("@ii")
_CMSG_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
#: A kernel stamp further than this from now (seconds) is not trusted: the wall clock was
#: stepped between the arrival and the read (a Pi without a clock chip sets it by NTP).
_STAMP_TRUST_S = 1.0


class _Arrival(threading.local):
    at: float | None = None


_ARRIVAL = _Arrival()


def arrival_time() -> float:
    """When the datagram being handled arrived, on the monotonic clock: the kernel's stamp
    where the burst reader has one (``drain_socket_reads``), else now.

    A handler runs some time after its datagram arrived: after the rest of its burst, and
    after whatever kept the event loop busy. Bandwidth estimation reads the spacing of
    arrivals (transport-cc feedback, the receive-side estimate, jitter): stamped when
    handled, a queue on the way and a busy loop look alike, and a loaded unit would misread
    its publishers' links.
    """
    at = _ARRIVAL.at
    return at if at is not None else time.monotonic()


def _kernel_stamp(ancdata: list[tuple[int, int, bytes]], offset: float) -> float | None:
    # ``offset``: wall clock minus monotonic clock, taken once for the burst
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
            layout = _TIMESPEC if len(data) >= _TIMESPEC.size else _TIMESPEC_32
            if len(data) < layout.size:
                return None
            seconds, nanoseconds = layout.unpack_from(data)
            return float(seconds + nanoseconds * 1e-9 - offset)
    return None


#: Called once per RTP packet received: (transport-wide sequence number or None, arrival
#: time on the monotonic clock, datagram size in bytes, SSRC).
ArrivalHook = Callable[[int | None, float, int, int], None]


def _hook_getter(hook: ArrivalHook | None) -> Callable[[], ArrivalHook | None]:
    # A bound method (Transport.on_rtp_arrival) is held weakly: the socket's read callback
    # holds the datagram handler, and must not keep the transport alive once it closed.
    # The handler calls what this returns, then the hook: one Python frame per packet less
    # than a wrapper that does both.
    if hook is None:
        return lambda: None
    if not inspect.ismethod(hook):
        return lambda: hook
    return weakref.WeakMethod(hook)


def install_fast_receive(
    dtls: RTCDtlsTransport,
    on_arrival: ArrivalHook | None = None,
    ids: ExtensionIds | None = None,
) -> None:
    """Handle incoming SRTP synchronously, in the datagram callback.

        aiortc passes each datagram through an ``asyncio.Queue`` and four awaited coroutines
        before a receiver sees it. For SRTP (not SRTCP) on a connected transport this
        unprotects, parses and routes it at once, to the adapters installed by
        ``take_over_receiver``; DTLS, STUN and RTCP keep aiortc's path. Each packet is first
        reported to ``on_arrival`` with its transport-wide sequence number (for bandwidth
        estimation), routed or not; an audio receiver is told the packet's audio level
    (``ReceiverAdapter._on_level``). Also drops empty datagrams (see ``harden_ice_input``).
        Header extensions are read at the ids in ``ids`` (the caller updates it as
        descriptions are applied; the SFU's fixed ids without it).
        The first call for a transport installs it; later calls change nothing.
    """
    connection: Any = dtls.transport._connection
    if getattr(connection, "_edge_sfu_fast", False):
        return
    original = connection.data_received
    router = dtls._rtp_router
    arrival_hook = _hook_getter(on_arrival)
    monotonic = time.monotonic
    unknown: set[int] = set()  # SSRCs whose drop was logged
    ext = ids if ids is not None else ExtensionIds()
    fast_ingest = compiled_ingest()
    # the receiving session and its srtp_t's address, for the compiled ingest (the
    # session is held: the address stays valid; a new one, after a DTLS restart, is read)
    keys: list[Any] = [None, 0]

    def data_received(data: bytes, component: int) -> None:
        if not data:
            return
        first = data[0]
        if (
            127 < first < 192
            and len(data) >= 12
            and not 191 < data[1] < 209  # not RTCP (aiortc's ``is_rtcp``, inlined: per packet)
            and dtls._state is State.CONNECTED
            and dtls._rx_srtp is not None
        ):
            session = dtls._rx_srtp
            twcc_id = ext.transport_cc
            try:
                if fast_ingest is not None:
                    if session is not keys[0]:
                        keys[:] = [session, session_address(session)]
                    ingested = fast_ingest(keys[1], data, twcc_id, LightRtpPacket)
                    if ingested is None:
                        return  # forged, replayed or malformed
                    packet, plain, twcc_seq = ingested
                else:
                    plain = session.unprotect(data)
                    packet = parse_rtp_light(plain)
                    twcc_seq = (
                        transport_sequence(plain, twcc_id) if twcc_id and plain[0] & 0x10 else None
                    )
            except Exception:  # forged, replayed or malformed: never the loop's problem
                return
            hook = arrival_hook()
            if hook is not None:
                at = _ARRIVAL.at  # ``arrival_time()``, inlined
                # the estimators' input: after the burst's copies have left
                after_sends(
                    hook, twcc_seq, at if at is not None else monotonic(), len(data), packet.ssrc
                )
            receiver = router.route_rtp(cast(Any, packet))
            if receiver is None:
                receiver = _route_by_mid(
                    router, plain, packet.ssrc, packet.payload_type, unknown, ext.mid
                )
            if isinstance(receiver, ReceiverAdapter):
                try:
                    if packet.ssrc not in receiver._streams:
                        receiver._new_stream(packet.ssrc, ext.rids(header_extensions(plain)))
                    on_level = receiver._on_level
                    if on_level is not None and ext.audio_level and plain[0] & 0x10:
                        level = audio_level(plain, ext.audio_level)
                        if level is not None:
                            on_level(level)
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


#: SSRCs per transport whose drop is logged (once each); later ones are dropped silently.
MAX_LOGGED_SSRCS = 32


def _route_by_mid(
    router: Any, plain: bytes, ssrc: int, payload_type: int, logged: set[int], mid_id: int
) -> Any:
    """The receiver of a new SSRC by its ``mid`` header extension, registered for next time.

    aiortc's ``RtpRouter.route_rtp`` knows SSRCs from the SDP and otherwise routes by a
    payload type only one receiver has. Simulcast SSRCs are in no SDP (rid-based, RFC
    8853), and video m-lines share payload types, so a browser's second encoding would be
    dropped there. The mid extension the first packets of each stream carry says where it
    belongs; the SSRC is then added to the router's table as aiortc does for payload types.
    """
    if ssrc in router.ssrc_table:  # known, with a payload type its m-line did not negotiate
        return None
    raw = header_extensions(plain).get(mid_id) if mid_id else None
    receiver = None
    if raw:
        try:
            receiver = router.mid_table.get(raw.decode("ascii"))
        except UnicodeDecodeError:
            receiver = None
    if receiver is None or receiver not in router.payload_type_table.get(payload_type, ()):
        if ssrc not in logged and len(logged) < MAX_LOGGED_SSRCS:
            logged.add(ssrc)
            logger.info(
                "dropping RTP of unknown SSRC %d (payload type %d, mid %r)",
                ssrc,
                payload_type,
                raw,
            )
        return None
    router.ssrc_table[ssrc] = receiver
    return receiver


MAX_READS_PER_WAKEUP = 64


def drain_socket_reads(protocol: Any) -> bool:
    """Read every queued datagram when the socket becomes readable, not just one.

    asyncio's datagram transport reads one datagram per event-loop iteration. A video
    frame arrives as a burst of packets; reading the burst in one go saves an epoll round
    per packet and sends the forwarded copies out as a burst too, which costs the kernel
    far less than waking each receiver once per packet; the batched sends of the burst
    (``egress``) leave when it has been read. Returns whether it was installed.
    """
    transport: Any = getattr(protocol, "transport", None)
    sock = getattr(transport, "_sock", None)
    loop = getattr(transport, "_loop", None)
    if not isinstance(sock, socket.socket) or sock.type != socket.SOCK_DGRAM or loop is None:
        return False
    if getattr(transport, "_edge_sfu_drain", False) or transport.is_closing():
        return False
    max_size = int(getattr(transport, "max_size", 256 * 1024))
    component = protocol.local_candidate.component
    stamped = False
    if sys.platform.startswith("linux"):
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            stamped = True
        except OSError:
            logger.debug("no arrival stamps on %s: handling times instead", sock)
    # one recvmmsg per burst where the helper is built and arrivals are stamped (Linux)
    receive_many = compiled_receive() if stamped else None
    recvmsg = sock.recvmsg
    recvfrom = sock.recvfrom
    arrival = _ARRIVAL
    sol_socket = socket.SOL_SOCKET
    unpack = _TIMESPEC.unpack
    size = _TIMESPEC.size

    def read_ready() -> None:
        begin_burst()
        try:
            read_burst()
        finally:
            flush_all()  # the copies of the whole burst leave now, a batch per subscriber

    def read_burst() -> None:
        now = time.monotonic()
        offset = time.time() - now
        if receive_many is not None:
            read_burst_compiled(receive_many, offset, now - _STAMP_TRUST_S)
            return
        for _ in range(MAX_READS_PER_WAKEUP):
            if transport._conn_lost:
                return
            try:
                if stamped:
                    data, ancdata, _flags, addr = recvmsg(max_size, _CMSG_SPACE)
                    at = None
                    if ancdata:
                        level, kind, raw = ancdata[0]
                        if level == sol_socket and kind == _SO_TIMESTAMPNS and len(raw) == size:
                            # the one control message there is, read inline (per datagram)
                            seconds, nanoseconds = unpack(raw)
                            at = seconds + nanoseconds * 1e-9 - offset
                        else:
                            at = _kernel_stamp(ancdata, offset)
                    # not from the future, nor from long before this burst
                    if at is not None and not now - _STAMP_TRUST_S < at <= time.monotonic():
                        at = None
                else:
                    data, addr = recvfrom(max_size)
                    at = None
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                protocol.error_received(exc)
                return
            handle(data, at, addr, bool(data) and 127 < data[0] < 192)

    def read_burst_compiled(receive: ReceiveMany, offset: float, earliest: float) -> None:
        # the same reads as the loop above, a recvmmsg at a time (the helper checks the
        # stamps as it does); the socket's error, if any, ends the burst as there
        left = MAX_READS_PER_WAKEUP
        while left > 0:
            if transport._conn_lost:
                return
            datagrams, err = receive(fd, left, offset, earliest)
            if not datagrams:
                if err and err not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                    protocol.error_received(OSError(err, os.strerror(err)))
                return
            left -= len(datagrams)
            for data, at, addr in datagrams:
                if transport._conn_lost:
                    return
                # RTP or RTCP: the helper names no source for those
                handle(data, at, addr, addr is None)

    def handle(data: bytes, at: float | None, addr: Any, rtp: bool) -> None:
        arrival.at = at
        try:
            if rtp:
                # SRTP/SRTCP can never be STUN (RFC 7983): skip aioice's parse attempt
                protocol.receiver.data_received(data, component)
            else:
                protocol.datagram_received(data, addr)
        except Exception:
            logger.exception("handling a datagram failed")
        finally:
            arrival.at = None

    # the public add_reader refuses a descriptor owned by a transport: swap its callback
    fd = sock.fileno()
    loop._remove_reader(fd)
    loop._add_reader(fd, read_ready)
    transport._edge_sfu_drain = True
    return True


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
