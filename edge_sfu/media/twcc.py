"""Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01).

The receiver of a transport tells the sender, for every transport-wide sequence number in a
range, whether the packet arrived and when (RTCP RTPFB, FMT 15)::

    |V=2|P|  FMT=15 |    PT=205     |           length              |
    |                     SSRC of packet sender                     |
    |                      SSRC of media source                     |
    |      base sequence number     |      packet status count      |
    |                 reference time                | fb pkt. count |
    |  packet chunk  | packet chunk | ... | recv delta | recv delta | ... | padding

* reference time: 24 bits, in multiples of 64 ms, of the first packet's arrival;
* packet chunks (16 bits): a run-length chunk (``0 | symbol:2 | run:13``) or a status vector
  (``1 | 0 | 14 one-bit symbols``, or ``1 | 1 | 7 two-bit symbols``); symbols are
  0 not received, 1 received with a small delta, 2 received with a large or negative delta;
* receive deltas, one per received packet, in 250 us ticks from the previous received packet
  (the first from the reference time): one unsigned byte (small) or two signed bytes (large).

``TransportFeedback`` is the packet both ways (``serialize``/``parse``); ``FeedbackBuilder``
collects arrivals on the receiving side and makes feedback packets of them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from edge_sfu.media.errors import MediaError

RTCP_RTPFB: Final = 205
FMT_TRANSPORT_CC: Final = 15
#: One receive-delta tick, in microseconds.
DELTA_TICK_US: Final = 250
#: One reference-time unit, in microseconds.
REFERENCE_TICK_US: Final = 64_000
_REFERENCE_WRAP: Final = 1 << 24

_NOT_RECEIVED: Final = 0
_SMALL: Final = 1
_LARGE: Final = 2
_MAX_RUN: Final = 0x1FFF
_HEADER = struct.Struct("!BBHIIHHI")


class MalformedFeedback(MediaError, ValueError):
    """A transport-cc feedback packet that does not parse (``TransportFeedback.parse``)."""


@dataclass(frozen=True, slots=True)
class TransportFeedback:
    """One transport-cc feedback packet.

    ``deltas[i]`` is for transport sequence number ``base_sequence + i`` (mod 2**16): None
    if the packet was not received, else its receive delta in 250 us ticks (from the
    previous received packet; the first from ``reference_time``).
    """

    sender_ssrc: int
    media_ssrc: int
    base_sequence: int
    #: 24-bit, in 64 ms units; wraps.
    reference_time: int
    #: 8-bit counter of feedback packets sent, to detect lost feedback; wraps.
    feedback_count: int
    deltas: tuple[int | None, ...]

    def arrivals(self) -> Iterator[tuple[int, int | None]]:
        """(sequence number, arrival in us since reference-time zero, or None) per packet."""
        at = self.reference_time * REFERENCE_TICK_US
        for i, delta in enumerate(self.deltas):
            seq = (self.base_sequence + i) & 0xFFFF
            if delta is None:
                yield seq, None
            else:
                at += delta * DELTA_TICK_US
                yield seq, at

    def serialize(self) -> bytes:
        """The RTCP packet, padded to 32 bits with RFC 3550 padding (as Chromium does)."""
        if not self.deltas or len(self.deltas) > 0xFFFF:
            raise ValueError("feedback must cover 1 to 65535 packets")
        symbols = [_symbol(d) for d in self.deltas]
        body = bytearray()
        for chunk in _chunks(symbols):
            body += chunk.to_bytes(2, "big")
        for delta, symbol in zip(self.deltas, symbols, strict=True):
            if symbol == _SMALL:
                body.append(delta)  # type: ignore[arg-type]
            elif symbol == _LARGE:
                body += struct.pack("!h", delta)
        padding = -(len(body) + _HEADER.size) % 4
        first = 0x80 | FMT_TRANSPORT_CC
        if padding:
            first |= 0x20
            body += bytes(padding - 1) + bytes((padding,))
        length = (_HEADER.size + len(body)) // 4 - 1
        header = _HEADER.pack(
            first,
            RTCP_RTPFB,
            length,
            self.sender_ssrc,
            self.media_ssrc,
            self.base_sequence & 0xFFFF,
            len(self.deltas),
            ((self.reference_time % _REFERENCE_WRAP) << 8) | (self.feedback_count & 0xFF),
        )
        return header + bytes(body)

    @classmethod
    def parse(cls, data: bytes) -> TransportFeedback:
        """Parse one RTCP packet (not a compound); raises ``MalformedFeedback``, only."""
        if len(data) < _HEADER.size:
            raise MalformedFeedback("transport-cc feedback too short")
        first, pt, length, sender, media, base, count, ref = _HEADER.unpack_from(data)
        if first >> 6 != 2 or pt != RTCP_RTPFB or first & 0x1F != FMT_TRANSPORT_CC:
            raise MalformedFeedback("not a transport-cc feedback packet")
        end = (length + 1) * 4
        if end > len(data) or end < _HEADER.size:
            raise MalformedFeedback("transport-cc feedback length is invalid")
        if first & 0x20:
            pad = data[end - 1]
            if pad == 0 or pad > end - _HEADER.size:
                raise MalformedFeedback("transport-cc feedback padding is invalid")
            end -= pad
        if count == 0:
            raise MalformedFeedback("transport-cc feedback covers no packet")
        symbols, pos = _read_chunks(data, _HEADER.size, end, count)
        deltas: list[int | None] = []
        for symbol in symbols:
            if symbol == _NOT_RECEIVED:
                deltas.append(None)
            elif symbol == _SMALL:
                if pos + 1 > end:
                    raise MalformedFeedback("transport-cc feedback deltas truncated")
                deltas.append(data[pos])
                pos += 1
            elif symbol == _LARGE:
                if pos + 2 > end:
                    raise MalformedFeedback("transport-cc feedback deltas truncated")
                deltas.append(struct.unpack_from("!h", data, pos)[0])
                pos += 2
            else:
                raise MalformedFeedback("transport-cc feedback uses the reserved symbol")
        return cls(sender, media, base, ref >> 8, ref & 0xFF, tuple(deltas))


def _symbol(delta: int | None) -> int:
    if delta is None:
        return _NOT_RECEIVED
    if 0 <= delta <= 0xFF:
        return _SMALL
    if -0x8000 <= delta <= 0x7FFF:
        return _LARGE
    raise ValueError(f"receive delta {delta} does not fit in 16 bits")


def _chunks(symbols: list[int]) -> Iterator[int]:
    # Greedy: a run where a run is at least as long as a vector would hold, else the
    # densest vector that fits the next symbols (libwebrtc encodes the same way).
    i, n = 0, len(symbols)
    while i < n:
        first = symbols[i]
        run = 1
        while i + run < n and run < _MAX_RUN and symbols[i + run] == first:
            run += 1
        one_bit = symbols[i : i + 14]
        if run >= 14 or run == n - i:
            yield (first << 13) | run
            i += run
        elif all(s <= _SMALL for s in one_bit):
            bits = 0
            for k in range(14):
                bits = (bits << 1) | (one_bit[k] if k < len(one_bit) else 0)
            yield 0x8000 | bits
            i += 14
        elif run >= 7:
            yield (first << 13) | run
            i += run
        else:
            two_bit = symbols[i : i + 7]
            bits = 0
            for k in range(7):
                bits = (bits << 2) | (two_bit[k] if k < len(two_bit) else 0)
            yield 0xC000 | bits
            i += 7


def _read_chunks(data: bytes, pos: int, end: int, count: int) -> tuple[list[int], int]:
    symbols: list[int] = []
    while len(symbols) < count:
        if pos + 2 > end:
            raise MalformedFeedback("transport-cc feedback chunks truncated")
        chunk = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if not chunk & 0x8000:
            run = chunk & _MAX_RUN
            if run == 0:
                raise MalformedFeedback("transport-cc run-length chunk of length 0")
            symbols.extend([(chunk >> 13) & 0x3] * run)
        elif not chunk & 0x4000:
            symbols.extend((chunk >> (13 - k)) & 1 for k in range(14))
        else:
            symbols.extend((chunk >> (12 - 2 * k)) & 3 for k in range(7))
    # symbols past the count (the rest of the last chunk) are not packets
    return symbols[:count], pos


class FeedbackBuilder:
    """The receiving side: records arrivals by transport sequence number, then ``build``s
    the feedback for everything recorded since the last call.

    Sequence numbers are unwrapped against the highest one seen; packets older than the
    last feedback's range (late or reordered past it) are ignored, as libwebrtc does.
    ``max_packets`` bounds both the memory and one packet's size (well under a datagram).
    """

    __slots__ = ("_arrivals", "_count", "_highest", "_next", "max_packets")

    def __init__(self, max_packets: int = 400) -> None:
        self.max_packets = max_packets
        #: unwrapped sequence number -> arrival (microseconds, any monotonic origin)
        self._arrivals: dict[int, int] = {}
        self._highest: int | None = None
        self._next: int | None = None  # first unwrapped sequence number not yet reported
        self._count = 0

    def on_packet(self, sequence: int, arrival_us: int) -> None:
        """Record that ``sequence`` (16-bit) arrived at ``arrival_us``."""
        highest = self._highest
        if highest is None:
            unwrapped = sequence & 0xFFFF
            self._highest = unwrapped
        else:
            diff = ((sequence - highest + 0x8000) & 0xFFFF) - 0x8000
            unwrapped = highest + diff
            if diff > 0:
                self._highest = unwrapped
        if self._next is None:
            self._next = unwrapped
        elif unwrapped < self._next:
            return
        arrivals = self._arrivals
        if len(arrivals) >= self.max_packets and unwrapped not in arrivals:
            # a flood between two feedbacks: forget the oldest rather than grow
            oldest = min(arrivals)
            del arrivals[oldest]
            self._next = max(self._next, min(arrivals, default=unwrapped))
        arrivals.setdefault(unwrapped, arrival_us)

    @property
    def pending(self) -> int:
        """How many arrivals wait for the next ``build``."""
        return len(self._arrivals)

    def build(self, sender_ssrc: int, media_ssrc: int) -> list[TransportFeedback]:
        """Feedback for the arrivals recorded since the last call (none if nothing arrived).

        A packet whose delta from the previous one does not fit 16 bits (over ~8 s) starts
        a new feedback packet, as does every ``max_packets`` sequence numbers.
        """
        if not self._arrivals or self._next is None:
            return []
        arrivals, self._arrivals = self._arrivals, {}
        seqs = sorted(arrivals)
        out: list[TransportFeedback] = []
        # packets missing since the last feedback are reported as lost, not skipped
        gap = seqs[0] - self._next
        base = self._next if 0 <= gap < self.max_packets // 2 else seqs[0]
        i = 0
        while i < len(seqs):
            first_at = arrivals[seqs[i]]
            reference = first_at // REFERENCE_TICK_US
            previous = reference * REFERENCE_TICK_US
            deltas: list[int | None] = []
            seq = base
            while i < len(seqs) and seq - base < self.max_packets:
                at = arrivals.get(seq)
                if at is None:
                    deltas.append(None)
                    seq += 1
                    continue
                ticks = (at - previous) // DELTA_TICK_US
                if not -0x8000 <= ticks <= 0x7FFF:
                    break
                deltas.append(ticks)
                # the next delta counts from this packet's arrival as the receiver rounds it
                previous += ticks * DELTA_TICK_US
                seq += 1
                i += 1
            while deltas and deltas[-1] is None:
                deltas.pop()
            out.append(
                TransportFeedback(
                    sender_ssrc,
                    media_ssrc,
                    base & 0xFFFF,
                    reference % _REFERENCE_WRAP,
                    self._count & 0xFF,
                    tuple(deltas),
                )
            )
            self._count += 1
            if i < len(seqs):
                base = seqs[i]
        self._next = seqs[-1] + 1
        return out


def split_compound(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(packet type, FMT/count, packet bytes) of each packet of a compound RTCP datagram.

    Stops quietly at the first malformed header (what follows cannot be framed).
    """
    pos, size = 0, len(data)
    while pos + 4 <= size:
        first, pt = data[pos], data[pos + 1]
        length = (data[pos + 2] << 8) | data[pos + 3]
        end = pos + 4 * (length + 1)
        if first >> 6 != 2 or end > size:
            return
        yield pt, first & 0x1F, data[pos:end]
        pos = end
