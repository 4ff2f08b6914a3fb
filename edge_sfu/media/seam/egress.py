"""Outgoing SRTP in batches: protected in place, sent per burst in one system call per socket.

The forwarder's cost per packet is mostly the kernel's: one ``sendto`` per packet and
subscriber, each a full trip through the UDP stack (and a receiver's wake-up). Here each
``SendPath`` protects its packets into its own preallocated arena (no ``bytes`` object
per packet) and queues them; at the end of the burst that produced them (the ingress reads
a burst per socket wake-up between ``begin_burst`` and ``flush_all``; anything queued
outside a burst is flushed by a ``call_soon``) each queue goes out in one ``sendmmsg``.
Consecutive datagrams of one size (a video frame's packets: packetizers split a frame into
equal parts) travel as one UDP GSO message (``UDP_SEGMENT``, Linux 4.18+): the kernel
builds and routes one large datagram and cuts it into the original ones at the end, which
costs a fraction of sending each.

libc's ``sendmmsg`` is called through cffi's ABI mode (cffi is what pylibsrtp is built
on). Where that is missing (not Linux, no cffi backend) or when ``EDGE_SFU_PLAIN_SEND=1``
is set, ``BatchWriter.create`` returns None and ``SendPath`` sends each packet at once with
``socket.sendto`` (the plain path, tested in CI alike).

Each copy's header, transport-wide number, payload copy and SRTP protection is one call
into the compiled helper ``_fastpath`` (built by ``pip install`` where there is a C
compiler and Python's headers; the Python interpreter's own work around a cffi call was
most of a copy's cost). Without it, or with ``EDGE_SFU_PURE_PYTHON=1``, the writer does the
same in Python (``with_transport_sequence`` and a cffi call), byte for byte.
A kernel or interface that refuses GSO (EIO, EINVAL) turns it off for that socket and the
datagrams go out as a plain ``sendmmsg``.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import pylibsrtp
from aiortc.rtcdtlstransport import State

logger = logging.getLogger(__name__)

#: Set to 1 (or true/yes/on) to send each packet with its own ``sendto``, never in batches.
PLAIN_SEND_ENV = "EDGE_SFU_PLAIN_SEND"
#: Set to 1 (or true/yes/on) to protect batched packets in Python, not the compiled helper.
PURE_PYTHON_ENV = "EDGE_SFU_PURE_PYTHON"
#: Datagrams a path queues before it flushes on its own (a burst read is at most 64).
BATCH_SLOTS = 64
#: Room for one SRTP packet in the arena (MTU-sized packets plus the SRTP trailer).
SLOT_BYTES = 1536
#: The kernel's limit of segments in one GSO message (``UDP_MAX_SEGMENTS``, 64 before 6.x).
GSO_MAX_SEGMENTS = 64
#: Largest GSO message: an IP datagram's 64 KiB less headers, with a margin.
GSO_MAX_BYTES = 60000
_SOL_UDP = 17
_UDP_SEGMENT = 103
# struct cmsghdr {size_t len; int level; int type;} + a uint16 gso size: CMSG_LEN(2) = 18,
# CMSG_SPACE(2) = 24 on 64-bit Linux; on 32-bit, 14 and 16.
_CMSG_HDR = struct.calcsize("@Nii")
_CMSG_LEN = _CMSG_HDR + 2
_WORD = struct.calcsize("@N")
_CMSG_SPACE = (_CMSG_LEN + _WORD - 1) // _WORD * _WORD

_srtp_ffi: Any = pylibsrtp._binding.ffi
_srtp_lib: Any = pylibsrtp._binding.lib
_SRTP_MAX_TRAILER: int = int(getattr(pylibsrtp, "SRTP_MAX_TRAILER_LEN", 144))

_CDEF = """
struct iovec { void *iov_base; size_t iov_len; };
struct msghdr {
    void *msg_name; unsigned int msg_namelen;
    struct iovec *msg_iov; size_t msg_iovlen;
    void *msg_control; size_t msg_controllen;
    int msg_flags;
};
struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
int sendmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen, int flags);
"""


@functools.cache
def _libc() -> tuple[Any, Any] | None:
    """libc's ``sendmmsg`` through cffi's ABI mode: (ffi, lib), or None where it cannot be had."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import cffi  # type: ignore[import-untyped]

        ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        lib = ffi.dlopen(None)
        lib.sendmmsg  # noqa: B018  (resolves the symbol now)
    except Exception as exc:  # no cffi backend, no such symbol
        logger.info("batched sending unavailable (%s); sending one by one", exc)
        return None
    return ffi, lib


def _env_on(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def plain_send_forced() -> bool:
    """Whether ``EDGE_SFU_PLAIN_SEND`` asks for one ``sendto`` per packet."""
    return _env_on(PLAIN_SEND_ENV)


@functools.cache
def _fast() -> Any:
    """The compiled helper, given libsrtp's ``srtp_protect`` (None: not built here)."""
    try:
        from edge_sfu.media.seam import _fastpath

        protect = _srtp_ffi.addressof(_srtp_lib, "srtp_protect")
        _fastpath.set_protect(int(_srtp_ffi.cast("uintptr_t", protect)))
        unprotect = _srtp_ffi.addressof(_srtp_lib, "srtp_unprotect")
        _fastpath.set_unprotect(int(_srtp_ffi.cast("uintptr_t", unprotect)))
    except Exception as exc:  # not built here (no compiler), or another pylibsrtp
        logger.info("compiled send helper unavailable (%s); protecting in Python", exc)
        return None
    return _fastpath


#: ``ingest(ctx, packet, twcc_id, packet_type)``: see ``compiled_ingest``.
Ingest = Callable[[int, bytes, int, Callable[..., Any]], "tuple[Any, bytes, int | None] | None"]


def compiled_ingest() -> Ingest | None:
    """The compiled helper's ``ingest``: an SRTP packet unprotected, its header parsed into
    the given type (as ``parse_rtp_light``) and its transport-wide sequence number read (as
    ``transport_sequence``; None when absent), in one call; None for a packet refused or
    malformed. None where the helper is not built or ``EDGE_SFU_PURE_PYTHON`` is set."""
    if _env_on(PURE_PYTHON_ENV):
        return None
    fast = _fast()
    return None if fast is None else fast.ingest  # type: ignore[no-any-return]


#: ``receive_many(fd, count, offset, earliest)``: see ``compiled_receive``.
ReceiveMany = Callable[[int, int, float, float], tuple[list[tuple[bytes, float | None, Any]], int]]


def compiled_receive() -> ReceiveMany | None:
    """The compiled helper's ``receive_many`` (up to 64 queued datagrams of a socket in one
    ``recvmmsg``, each with its kernel arrival stamp on the monotonic clock, or None where
    missing or untrusted, and its source address for what is not RTP or RTCP), for the
    burst reader; None where the helper is not built or ``EDGE_SFU_PURE_PYTHON`` is set."""
    if _env_on(PURE_PYTHON_ENV):
        return None
    fast = _fast()
    return None if fast is None else fast.receive_many  # type: ignore[no-any-return]


def session_address(session: Any) -> int:
    """The address of a pylibsrtp session's ``srtp_t``, for the compiled helper (valid
    while the session lives)."""
    return int(_srtp_ffi.cast("uintptr_t", session._srtp[0]))


def fast_path_available() -> bool:
    """Whether the compiled helper is built and loads (``EDGE_SFU_PURE_PYTHON`` aside)."""
    return _fast() is not None


def _sockaddr(sock: socket.socket, addr: tuple[Any, ...]) -> bytes | None:
    """``addr`` as the kernel's ``struct sockaddr_in``/``sockaddr_in6`` (None: other family)."""
    host, port = str(addr[0]), int(addr[1])
    family = sock.family
    if family == socket.AF_INET:
        try:
            packed = socket.inet_pton(socket.AF_INET, host)
        except OSError:
            return None
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + packed + bytes(8)
    if family == socket.AF_INET6:
        try:
            packed = socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
        except OSError:
            return None
        flowinfo = int(addr[2]) if len(addr) > 2 else 0
        scope = int(addr[3]) if len(addr) > 3 else 0
        return (
            struct.pack("=H", socket.AF_INET6)
            + struct.pack("!HI", port, flowinfo)
            + packed
            + struct.pack("=I", scope)
        )
    return None


# fixed header with X set, "one-byte form, one word", id/length, sequence, a padding byte
_WITH_SEQ = struct.Struct("!B11s4sBHx")
_ONE_BYTE_FORM = b"\xbe\xde\x00\x01"


def with_transport_sequence(header: bytes, ext_id: int, seq: int) -> bytes | None:
    """``header`` (an RTP header without extension) with a one-byte-form header extension
    carrying the transport-wide sequence number ``seq`` under ``ext_id`` (1-14); None if
    the header already has an extension (it is then sent as it is)."""
    first = header[0]
    if first & 0x10:
        return None
    if len(header) == 12:  # no CSRC: what the forwarder sends, in one pack
        return _WITH_SEQ.pack(first | 0x10, header[1:], _ONE_BYTE_FORM, (ext_id << 4) | 1, seq)
    end = 12 + 4 * (first & 0x0F)
    return b"".join(
        (
            bytes((first | 0x10,)),
            header[1:end],
            b"\xbe\xde\x00\x01",
            bytes(((ext_id << 4) | 1, (seq >> 8) & 0xFF, seq & 0xFF, 0)),
            header[end:],
        )
    )


#: Packets that left together: (send time, [(transport-wide sequence number, size in bytes,
#: probe?), ...]); one call per batch, not per packet (the hot path).
SentHandler = Callable[[float, list[tuple[int, int, bool]]], None]


class Sent(NamedTuple):
    """What one ``BatchWriter.send_queued`` did."""

    #: datagrams the socket took
    sent: int
    #: datagrams that were queued (the rest were dropped)
    queued: int
    #: the transport-cc numbered packets among them: (sequence, RTP size, probe?)
    numbered: list[tuple[int, int, bool]]


class BatchWriter:
    """SRTP-protect packets into an arena and send them in batches to one destination.

    ``queue`` numbers (transport-cc) and queues a packet (False: it did not fit or SRTP refused it);
    ``flush`` sends the queue. The owner (``SendPath``) is told the result through
    ``packets_sent``/``packets_dropped`` and, for packets numbered for transport-cc, the
    ``on_sent`` handler, called at flush with the time they actually left.
    """

    __slots__ = (
        "_arena",
        "_ctrl_size",
        "_ctrls",
        "_ctx_addr",
        "_fast",
        "_fd",
        "_ffi",
        "_gso",
        "_iov_addrs",
        "_iovs",
        "_lenp",
        "_lens",
        "_lib",
        "_msgs",
        "_name",
        "_name_len",
        "_numbered",
        "_on_sent",
        "_session",
        "_slot_addrs",
        "_slot_ptrs",
        "_slot_views",
        "_sock",
        "_sockaddr",
        "_srtp",
        "dead",
        "packets_dropped",
        "packets_sent",
        "syscalls",
    )

    def __init__(self, sock: socket.socket, sockaddr: bytes, session: Any) -> None:
        loaded = _libc()
        assert loaded is not None  # ``create`` checked
        ffi, lib = loaded
        self._ffi = ffi
        self._lib = lib
        # the socket object is kept to see it closed: its number could be another's by then
        self._sock = sock
        self._fd = sock.fileno()
        # the srtp_t belongs to the session: keep the session alive as long as the pointer
        self._session = session
        self._srtp = session._srtp[0]
        arena = _srtp_ffi.new("char[]", BATCH_SLOTS * SLOT_BYTES)
        self._arena = arena  # owns the memory: pointers into it do not keep it alive
        whole = _srtp_ffi.buffer(arena)
        self._slot_ptrs = [arena + i * SLOT_BYTES for i in range(BATCH_SLOTS)]
        self._slot_views = [
            memoryview(whole)[i * SLOT_BYTES : (i + 1) * SLOT_BYTES] for i in range(BATCH_SLOTS)
        ]
        self._lenp = _srtp_ffi.new("int *")
        self._sockaddr = sockaddr
        self._name = ffi.new("char[]", sockaddr)
        self._name_len = len(sockaddr)
        self._iovs = ffi.new("struct iovec[]", BATCH_SLOTS)
        # the arena belongs to pylibsrtp's ffi, the iovecs to ours: point across by address
        for i in range(BATCH_SLOTS):
            address = int(_srtp_ffi.cast("uintptr_t", self._slot_ptrs[i]))
            self._iovs[i].iov_base = ffi.cast("void *", address)
        # the compiled helper takes plain addresses: the slot, its iovec, the srtp_t
        self._fast: Any = None if _env_on(PURE_PYTHON_ENV) else _fast()
        self._slot_addrs = [int(_srtp_ffi.cast("uintptr_t", p)) for p in self._slot_ptrs]
        self._iov_addrs = [int(ffi.cast("uintptr_t", self._iovs + i)) for i in range(BATCH_SLOTS)]
        self._ctx_addr = session_address(session)
        self._msgs = ffi.new("struct mmsghdr[]", BATCH_SLOTS)
        for i in range(BATCH_SLOTS):
            hdr = self._msgs[i].msg_hdr
            hdr.msg_name = self._name
            hdr.msg_namelen = self._name_len
        self._ctrl_size = _CMSG_SPACE
        self._ctrls = ffi.new("char[]", BATCH_SLOTS * _CMSG_SPACE)
        head = struct.pack("@Nii", _CMSG_LEN, _SOL_UDP, _UDP_SEGMENT)
        for i in range(BATCH_SLOTS):
            ffi.memmove(self._ctrls + i * _CMSG_SPACE, head, len(head))
        self._lens: list[int] = []
        # (transport-wide seq, size before SRTP, probe?) of the numbered packets queued
        self._numbered: list[tuple[int, int, bool]] = []
        self._on_sent: SentHandler | None = None
        self._gso = True
        self.dead = False
        self.packets_sent = 0
        self.packets_dropped = 0
        self.syscalls = 0

    @classmethod
    def create(cls, sock: socket.socket, addr: tuple[Any, ...], session: Any) -> BatchWriter | None:
        """A writer for ``sock`` towards ``addr``; None where batching is off or unavailable."""
        if plain_send_forced() or _libc() is None:
            return None
        sockaddr = _sockaddr(sock, addr)
        if sockaddr is None:
            return None
        return cls(sock, sockaddr, session)

    @property
    def pending(self) -> int:
        """Datagrams queued and not yet sent."""
        return len(self._lens)

    def set_sent_handler(self, on_sent: SentHandler | None) -> None:
        """Who hears of numbered packets as they leave (transport-cc)."""
        self._on_sent = on_sent

    @property
    def compiled(self) -> bool:
        """Whether this writer protects with the compiled helper (False: in Python)."""
        return self._fast is not None

    def queue(self, header: bytes, payload: bytes, ext_id: int, seq: int, probe: bool) -> bool:
        """Queue ``header + payload``, numbered ``seq`` under transport-cc extension
        ``ext_id`` when ``ext_id`` is set and the header has no extension yet (``seq`` is
        then reported to the sent handler when it leaves), SRTP-protected. False: it did
        not fit or SRTP refused it."""
        lens = self._lens
        index = len(lens)
        if index >= BATCH_SLOTS:
            self.flush()
            lens = self._lens
            index = 0
        numbered = ext_id and not header[0] & 0x10
        fast = self._fast
        if fast is not None:
            out = fast.protect_into(
                self._slot_addrs[index],
                SLOT_BYTES,
                self._iov_addrs[index],
                self._ctx_addr,
                header,
                payload,
                ext_id,
                seq,
            )
            if out < 0:
                return False
            size = len(header) + len(payload) + (8 if numbered else 0)
        else:  # the same in Python: what runs where the helper could not be built
            if numbered:
                header = with_transport_sequence(header, ext_id, seq) or header
            hlen = len(header)
            size = hlen + len(payload)
            if size > SLOT_BYTES - _SRTP_MAX_TRAILER:
                return False
            view = self._slot_views[index]
            view[:hlen] = header
            view[hlen:size] = payload
            lenp = self._lenp
            lenp[0] = size
            if _srtp_lib.srtp_protect(self._srtp, self._slot_ptrs[index], lenp) != 0:
                return False
            out = lenp[0]
            self._iovs[index].iov_len = out
        lens.append(out)
        if numbered:
            self._numbered.append((seq, size, probe))
        if index == 0:
            _OUTBOX.add(self)
        return True

    def flush(self) -> None:
        """Send every queued datagram: one ``sendmmsg``, equal-size runs as GSO messages."""
        if self._lens:
            self.account(time.monotonic(), self.send_queued())

    def send_queued(self) -> Sent:
        """Send the queue and empty it, leaving the bookkeeping to ``account``."""
        lens = self._lens
        numbered = self._numbered
        if not lens:
            return Sent(0, 0, [])
        self._lens = []
        if numbered:
            self._numbered = []
        if self._sock.fileno() != self._fd:
            self.dead = True  # closed since: the path resolves again
        return Sent(self._send(lens) if not self.dead else 0, len(lens), numbered)

    def account(self, now: float, sent: Sent) -> None:
        """Count a queue ``send_queued`` sent and report its numbered packets, sent at
        ``now``, to the sent handler."""
        self.packets_sent += sent.sent
        self.packets_dropped += sent.queued - sent.sent
        on_sent = self._on_sent
        if sent.numbered and on_sent is not None:
            # a datagram the socket refused counts as sent and lost: feedback will say so
            on_sent(now, sent.numbered)

    def _messages(self, lens: list[int], start: int) -> list[tuple[int, int]]:
        """(first datagram, datagram count) per message from ``start``: runs of one size
        (the last of a run may be shorter, as GSO allows) when GSO is on, else one each."""
        out: list[tuple[int, int]] = []
        count = len(lens)
        i = start
        if not self._gso:
            return [(j, 1) for j in range(start, count)]
        while i < count:
            size = lens[i]
            j = i + 1
            total = size
            while j < count and j - i < GSO_MAX_SEGMENTS and total + lens[j] <= GSO_MAX_BYTES:
                if lens[j] == size:
                    total += size
                    j += 1
                    continue
                if lens[j] < size:  # a shorter datagram may end the run
                    j += 1
                break
            out.append((i, j - i))
            i = j
        return out

    def _send(self, lens: list[int]) -> int:
        """Send ``lens`` (the queue); returns how many datagrams left."""
        fast = self._fast
        if fast is not None:  # the same plan and error handling, in one call
            sent, err, gso, calls = fast.send_batch(
                self._fd,
                self._sockaddr,
                self._iov_addrs[0],
                lens,
                self._gso,
                GSO_MAX_SEGMENTS,
                GSO_MAX_BYTES,
            )
            self.syscalls += calls
            if self._gso and not gso:
                logger.info("UDP GSO refused; sending datagrams one by one in a batch")
                self._gso = False
            if err in (errno.EBADF, errno.ENOTSOCK):
                self.dead = True  # the socket went away; the path resolves again
            return int(sent)
        ffi = self._ffi
        msgs = self._msgs
        iovs = self._iovs
        done = 0
        count = len(lens)
        while done < count:
            plan = self._messages(lens, done)
            for m, (first, n) in enumerate(plan):
                hdr = msgs[m].msg_hdr
                hdr.msg_iov = iovs + first
                hdr.msg_iovlen = n
                if n > 1:
                    ctrl = self._ctrls + m * self._ctrl_size
                    ffi.cast("uint16_t *", ctrl + _CMSG_HDR)[0] = lens[first]
                    hdr.msg_control = ctrl
                    hdr.msg_controllen = self._ctrl_size
                else:
                    hdr.msg_control = ffi.NULL
                    hdr.msg_controllen = 0
            self.syscalls += 1
            result = self._lib.sendmmsg(self._fd, msgs, len(plan), 0)
            if result > 0:
                done += sum(n for _, n in plan[:result])
                continue
            err = ffi.errno
            if result == 0 or err in (errno.EAGAIN, errno.ENOBUFS):
                return done  # the socket buffer is full: drop the rest, as a router would
            if err == errno.EINTR:
                continue
            if self._gso and err in (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP):
                logger.info("UDP GSO refused (%s); sending datagrams one by one in a batch", err)
                self._gso = False
                continue
            if err in (errno.EBADF, errno.ENOTSOCK):
                self.dead = True  # the socket went away; the path resolves again
            return done
        return done


class _Outbox:
    """The writers with queued datagrams, flushed at the end of a burst read or, outside
    one, by ``call_soon``."""

    def __init__(self) -> None:
        self._writers: list[BatchWriter] = []
        # the loop a flush is scheduled on (a loop closed meanwhile never runs it)
        self._scheduled: asyncio.AbstractEventLoop | None = None
        #: A burst read is under way: its end flushes (``flush_all``), nothing to schedule.
        self.reading = False
        #: Bookkeeping put off until the burst's datagrams have left (``after_sends``).
        self.later: list[tuple[Callable[..., object], tuple[Any, ...]]] = []

    def add(self, writer: BatchWriter) -> None:
        self._writers.append(writer)
        if self.reading:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: the caller flushes (``BatchWriter.flush``)
            return
        if self._scheduled is not loop:
            self._scheduled = loop
            loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._scheduled = None
        self.flush()

    def flush(self) -> None:
        self.reading = False
        writers = self._writers
        if not writers:
            self.run_later()
            return
        self._writers = []
        # Every writer's datagrams leave before any bookkeeping (the estimator's record of
        # what was sent, in Python): the last subscriber's batch does not wait for it.
        # (a writer filled up and flushed since it was added is here twice: its second
        # send_queued finds the queue empty)
        sent: list[Sent] = []
        for writer in writers:
            try:
                sent.append(writer.send_queued())
            except Exception:
                logger.exception("sending a batch failed")
                sent.append(Sent(0, 0, []))
        now = time.monotonic()
        for writer, batch in zip(writers, sent, strict=True):
            try:
                writer.account(now, batch)
            except Exception:
                logger.exception("accounting for a sent batch failed")
        self.run_later()

    def run_later(self) -> None:
        later = self.later
        if not later:
            return
        self.later = []
        for callback, args in later:
            try:
                callback(*args)
            except Exception:
                logger.exception("bookkeeping of a received packet failed")


_OUTBOX = _Outbox()

#: ``fan_out(packet, consumers)``: ``consumer.deliver(packet)`` for each consumer.
FanOut = Callable[[Any, list[Any]], None]
_fan_out_configured = False


def configure_fan_out(consumer_type: type, silence_check_s: float) -> None:
    """Tell the compiled fan-out which consumer class it copies for (exactly that class;
    any other is handed its packets through ``deliver``) and how often ``deliver`` checks
    whether a forwarded layer went silent. Does nothing where the helper is not built."""
    global _fan_out_configured
    fast = _fast()
    if fast is None:
        return
    fast.configure(
        consumer_type, State.CONNECTED, _OUTBOX.add, BATCH_SLOTS, SLOT_BYTES, silence_check_s
    )
    _fan_out_configured = True


def compiled_copies() -> int:
    """How many copies the compiled fan-out has queued itself so far (0 without it)."""
    fast = _fast()
    return 0 if fast is None else int(fast.copies())


def fan_out() -> FanOut | None:
    """The compiled fan-out (``_fastpath.fan_out``: a producer's loop over its consumers,
    each steady-state copy written, numbered, protected and queued in C, everything else
    through ``deliver``); None where the helper is not built or not configured, or the
    batched or compiled path is turned off (``EDGE_SFU_PLAIN_SEND``, ``EDGE_SFU_PURE_PYTHON``):
    the caller then loops in Python. Read when a producer is made."""
    if not _fan_out_configured or plain_send_forced() or _env_on(PURE_PYTHON_ENV):
        return None
    fast = _fast()
    return None if fast is None else fast.fan_out  # type: ignore[no-any-return]


def begin_burst() -> None:
    """A burst read begins: what it queues leaves at its end (``flush_all``, which the
    reader must call, in a ``finally``), not on a flush scheduled on the loop."""
    _OUTBOX.reading = True


def after_sends(callback: Callable[..., object], *args: Any) -> None:
    """``callback(*args)`` once the datagrams of the burst being read have left (at the end
    of ``flush_all``, in the order they were put off); at once outside a burst read.

    For a received packet's bookkeeping that forwarding does not wait for (arrival times
    for the uplink's estimators): a frame's copies leave before it, not after each packet's.
    An exception is logged."""
    if _OUTBOX.reading:
        _OUTBOX.later.append((callback, args))
        return
    try:
        callback(*args)
    except Exception:
        logger.exception("bookkeeping of a received packet failed")


def flush_all() -> None:
    """Send everything queued now (the ingress calls it at the end of each burst read)."""
    _OUTBOX.flush()
