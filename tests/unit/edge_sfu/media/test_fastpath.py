"""The compiled send helper against the pure-Python path it replaces: the same datagrams,
byte for byte, from real SRTP sessions; what it refuses, it refuses without harm."""

from __future__ import annotations

import errno
import socket
import struct
from typing import Any

import pylibsrtp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from edge_sfu.media.seam import egress
from edge_sfu.media.seam.extensions import transport_sequence
from edge_sfu.media.seam.packets import LightRtpPacket, parse_rtp_light

KEY = bytes(range(30))


def _tx() -> pylibsrtp.Session:
    return pylibsrtp.Session(
        pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    )


def _rx() -> pylibsrtp.Session:
    return pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))


def _writers(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> tuple[egress.BatchWriter, egress.BatchWriter]:
    """A compiled and a pure-Python writer, each with its own session on the same key."""
    sender, receiver = pair
    made = []
    for pure in ("0", "1"):
        monkeypatch.setenv(egress.PURE_PYTHON_ENV, pure)
        monkeypatch.setenv(egress.PLAIN_SEND_ENV, "0")
        writer = egress.BatchWriter.create(sender, receiver.getsockname(), _tx())
        assert writer is not None
        made.append(writer)
    compiled, python = made
    assert compiled.compiled, "the compiled send helper was not built"
    assert not python.compiled
    return compiled, python


def _queued(writer: egress.BatchWriter) -> list[bytes]:
    return [bytes(writer._slot_views[i][:n]) for i, n in enumerate(writer._lens)]


def _header(first: int, csrcs: int, seq: int, extension: bytes) -> bytes:
    head = struct.pack("!BBHII", first | csrcs, 0x60, seq, seq * 90, 0xCAFE)
    head += b"".join(struct.pack("!I", 0x1000 + i) for i in range(csrcs))
    if extension:
        head = bytes((head[0] | 0x10,)) + head[1:] + extension
    return head


headers = st.builds(
    _header,
    first=st.sampled_from([0x80, 0xA0]),  # with and without the padding bit
    csrcs=st.integers(0, 3),
    seq=st.integers(0, 0xFFFF),
    # none, or a one-byte-form extension already there (then it is sent as it is)
    extension=st.sampled_from([b"", b"\xbe\xde\x00\x01\x12\xab\xcd\x00"]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=headers,
    payload=st.binary(min_size=0, max_size=1400),
    ext_id=st.integers(0, 14),
    seq=st.integers(0, 0xFFFF),
    probe=st.booleans(),
)
def test_the_compiled_helper_queues_what_python_queues(
    pair: tuple[socket.socket, socket.socket],
    monkeypatch: pytest.MonkeyPatch,
    header: bytes,
    payload: bytes,
    ext_id: int,
    seq: int,
    probe: bool,
) -> None:
    compiled, python = _writers(pair, monkeypatch)
    results = [w.queue(header, payload, ext_id, seq, probe) for w in (compiled, python)]
    assert results[0] == results[1]
    assert _queued(compiled) == _queued(python)
    assert compiled._numbered == python._numbered
    iov_lens = [[w._iovs[i].iov_len for i in range(len(w._lens))] for w in (compiled, python)]
    assert iov_lens[0] == iov_lens[1] == compiled._lens
    fits = len(header) + len(payload) + 8 <= egress.SLOT_BYTES - egress._SRTP_MAX_TRAILER
    if fits:
        assert results[0]
        numbered = bool(ext_id) and not header[0] & 0x10
        assert compiled._numbered == (
            [(seq, len(header) + len(payload) + 8, probe)] if numbered else []
        )


def test_compiled_packets_leave_numbered_and_decrypt(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled, _ = _writers(pair, monkeypatch)
    rx = _rx()
    sent: list[tuple[int, int, bool]] = []
    compiled.set_sent_handler(lambda _, packets: sent.extend(packets))
    packets = [(_header(0x80, 0, i, b""), bytes([i]) * (1000 + i % 2)) for i in range(5)]
    for i, (header, payload) in enumerate(packets):
        assert compiled.queue(header, payload, 3, 500 + i, False)
    compiled.flush()
    received = [rx.unprotect(pair[1].recv(2048)) for _ in packets]
    assert received == [
        egress.with_transport_sequence(h, 3, 500 + i) + p  # type: ignore[operator]
        for i, (h, p) in enumerate(packets)
    ]
    assert [(s, size) for s, size, _ in sent] == [
        (500 + i, len(h) + len(p) + 8) for i, (h, p) in enumerate(packets)
    ]


@pytest.mark.parametrize(
    "header",
    [
        b"\x80\x60\x00",  # shorter than an RTP header
        struct.pack("!BBHII", 0x83, 0x60, 1, 2, 3),  # says 3 CSRCs, has none
    ],
)
def test_a_malformed_header_is_refused_and_the_writer_goes_on(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch, header: bytes
) -> None:
    compiled, _ = _writers(pair, monkeypatch)
    assert not compiled.queue(header, b"x" * 100, 3, 7, False)
    assert compiled.pending == 0 and compiled._numbered == []
    good = _header(0x80, 0, 9, b"")
    assert compiled.queue(good, b"y" * 100, 3, 8, False)
    compiled.flush()
    numbered = egress.with_transport_sequence(good, 3, 8)
    assert numbered is not None
    assert _rx().unprotect(pair[1].recv(2048)) == numbered + b"y" * 100


def test_an_oversized_packet_is_refused_both_ways(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    for writer in _writers(pair, monkeypatch):
        too_big = egress.SLOT_BYTES - egress._SRTP_MAX_TRAILER - 12 - 8 + 1
        assert not writer.queue(_header(0x80, 0, 1, b""), bytes(too_big), 3, 1, False)
        assert writer.queue(_header(0x80, 0, 1, b""), bytes(too_big - 1), 3, 1, False)


def test_wrong_argument_types_raise_instead_of_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = egress._fast()
    assert fast is not None
    with pytest.raises(TypeError):
        fast.protect_into(1, 2, 3)
    with pytest.raises(ValueError):
        fast.protect_into(0, 1536, 0, 0, b"h" * 12, b"p", 0, 0)  # null slot and context


def test_the_pure_python_path_is_forced_by_the_environment(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, receiver = pair
    monkeypatch.setenv(egress.PURE_PYTHON_ENV, "yes")
    writer = egress.BatchWriter.create(sender, receiver.getsockname(), _tx())
    assert writer is not None and not writer.compiled
    monkeypatch.setenv(egress.PURE_PYTHON_ENV, "0")
    writer = egress.BatchWriter.create(sender, receiver.getsockname(), _tx())
    assert writer is not None and writer.compiled


def _expected_ingest(
    rx: pylibsrtp.Session, packet: bytes, twcc_id: int
) -> tuple[tuple[int, int, int, int, int, bytes], bytes, int | None] | None:
    """What the pure-Python ingress makes of ``packet``: pylibsrtp, ``parse_rtp_light``,
    ``transport_sequence``."""
    try:
        plain = rx.unprotect(packet)
        rtp = parse_rtp_light(plain)
    except (pylibsrtp.Error, ValueError):
        return None
    twcc = transport_sequence(plain, twcc_id) if twcc_id and plain[0] & 0x10 else None
    fields = (rtp.payload_type, rtp.marker, rtp.sequence_number, rtp.timestamp, rtp.ssrc)
    return (*fields, rtp.payload), plain, twcc


def _ingested(
    got: tuple[Any, bytes, int | None] | None,
) -> tuple[tuple[int, int, int, int, int, bytes], bytes, int | None] | None:
    if got is None:
        return None
    rtp, plain, twcc = got
    assert isinstance(rtp, LightRtpPacket)
    fields = (rtp.payload_type, rtp.marker, rtp.sequence_number, rtp.timestamp, rtp.ssrc)
    return (*fields, rtp.payload), plain, twcc


extensions = st.sampled_from(
    [
        b"",
        b"\xbe\xde\x00\x01\x32\x12\x34\x00",  # one-byte form: id 3, two bytes
        b"\xbe\xde\x00\x02\x10\xaa\x00\x31\x56\x78\x00\x00",  # id 1 (one byte), then id 3
        b"\xbe\xde\x00\x01\x33\x12\x34\x56",  # id 3 but four bytes long: not a number
        b"\xbe\xde\x00\x01\xf0\x00\x00\x00",  # the reserved id 15 ends the walk
        b"\x10\x00\x00\x01\x03\x02\xab\xcd",  # two-byte form: id 3, two bytes
        b"\x10\x00\x00\x01\x03\x09\xab\xcd",  # two-byte form running past the block
        b"\xbe\xde\x00\x09\x32\x12\x34\x00",  # a block longer than the packet may be
        b"\x12\x34\x00\x01\x32\x12\x34\x00",  # another profile
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    first=st.sampled_from([0x80, 0xA0]),  # with and without padding
    marker=st.booleans(),
    csrcs=st.integers(0, 3),
    seq=st.integers(0, 0xFFFF),
    extension=extensions,
    payload=st.binary(min_size=0, max_size=1400),
    twcc_id=st.sampled_from([0, 1, 3, 14]),
    flip=st.one_of(st.none(), st.integers(0, 2000)),
)
def test_the_compiled_ingest_reads_what_the_python_ingress_reads(
    first: int,
    marker: bool,
    csrcs: int,
    seq: int,
    extension: bytes,
    payload: bytes,
    twcc_id: int,
    flip: int | None,
) -> None:
    # Unprotect, parse and the transport-wide number against pylibsrtp, parse_rtp_light and
    # transport_sequence on real SRTP: well-formed, padded (the pad count may exceed the
    # payload: malformed), junk extension blocks, forged and replayed packets.
    ingest = egress.compiled_ingest()
    assert ingest is not None, "the compiled helper was not built"
    header = _header(first, csrcs, seq, extension)
    header = header[:1] + bytes((header[1] | (0x80 if marker else 0),)) + header[2:]
    try:
        packet = _tx().protect(header + payload)
    except pylibsrtp.Error:  # libsrtp refuses to send a block running past the packet
        assume(False)
    if flip is not None:  # a forged or damaged packet
        at = flip % len(packet)
        packet = packet[:at] + bytes((packet[at] ^ 0x01,)) + packet[at + 1 :]
    python_rx, compiled_rx = _rx(), _rx()
    expected = _expected_ingest(python_rx, packet, twcc_id)
    address = egress.session_address(compiled_rx)
    assert _ingested(ingest(address, packet, twcc_id, LightRtpPacket)) == expected
    # the same packet again is a replay: refused both ways
    assert _expected_ingest(python_rx, packet, twcc_id) is None
    assert ingest(address, packet, twcc_id, LightRtpPacket) is None


def test_the_compiled_ingest_refuses_bad_arguments() -> None:
    ingest = egress.compiled_ingest()
    assert ingest is not None
    session = _rx()  # held: its address stays valid
    address = egress.session_address(session)
    with pytest.raises(TypeError):
        ingest(address, "text", 0, LightRtpPacket)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ingest(address, b"\x80" * 40, 0, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ingest(address, b"\x80" * 40, 0)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        ingest(0, b"\x80" * 40, 0, LightRtpPacket)  # no session
    assert ingest(address, b"", 3, LightRtpPacket) is None
    assert ingest(address, b"\x80\x60", 3, LightRtpPacket) is None

    def failing(*fields: object) -> None:
        raise RuntimeError("the packet type failed")

    packet = _tx().protect(_header(0x80, 0, 7, b"") + b"payload")
    with pytest.raises(RuntimeError):
        ingest(address, packet, 0, failing)


def test_the_pure_python_path_reads_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge_sfu.media.consumer  # noqa: F401  (tells the fan-out what it copies for)

    monkeypatch.setenv(egress.PURE_PYTHON_ENV, "1")
    assert egress.compiled_ingest() is None and egress.fan_out() is None
    assert egress.compiled_receive() is None
    monkeypatch.setenv(egress.PURE_PYTHON_ENV, "0")
    assert egress.compiled_ingest() is not None and egress.fan_out() is not None
    assert egress.compiled_receive() is not None


_SO_TIMESTAMPNS = 35


def _kernel_stamps() -> bool:
    """Whether this kernel stamps datagrams on request (qemu-user refuses with ENOPROTOOPT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except OSError:
            return False
    return True


def _receive_pair(family: int, *, stamps: bool) -> tuple[socket.socket, socket.socket]:
    """A non-blocking receiver (asking for kernel stamps if ``stamps``) and a sender, on loopback.

    Skips the test where the family has no loopback (IPv6 switched off).
    """
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    receiver = socket.socket(family, socket.SOCK_DGRAM)
    sender = socket.socket(family, socket.SOCK_DGRAM)
    try:
        receiver.bind((host, 0))
        sender.bind((host, 0))
    except OSError:
        receiver.close()
        sender.close()
        pytest.skip(f"no {host} loopback here")
    receiver.setblocking(False)
    if stamps:
        receiver.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    return receiver, sender


def _queue(receiver: socket.socket, sender: socket.socket, datagrams: list[bytes]) -> None:
    for data in datagrams:
        sender.sendto(data, receiver.getsockname())
    # loopback delivers within the sendto; a bounded wait for readability all the same
    import select

    assert select.select([receiver], [], [], 5.0)[0] == [receiver]


def _clock() -> tuple[float, float]:
    import time

    now = time.monotonic()
    return time.time() - now, now


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_receive_many_reads_what_recvmsg_reads(family: int) -> None:
    # The datagrams, their stamps and (for what is not RTP/RTCP) their sources as the
    # socket module gives them; every size UDP carries, an empty one included.
    receive = egress.compiled_receive()
    assert receive is not None, "the compiled helper was not built"
    stamps = _kernel_stamps()  # where there are none, every datagram's stamp is None
    receiver, sender = _receive_pair(family, stamps=stamps)
    with receiver, sender:
        datagrams = [
            bytes([0x80, 0x60]) + b"r" * 1200,  # RTP
            bytes([0x81, 200]) + b"c" * 30,  # RTCP
            bytes([0x00, 0x01]) + b"s" * 50,  # STUN
            bytes([0x16, 0xFE]) + b"d" * 100,  # DTLS
            b"",
            bytes([0xBF]) + b"x" * 60000,  # the largest kind of burst datagram
            bytes([0xC0]) + b"y" * 10,  # above RTP's range: named
        ]
        offset, before = _clock()
        _queue(receiver, sender, datagrams)
        got, err = receive(receiver.fileno(), 64, offset, before - 1.0)
        _, after = _clock()
        assert err == 0
        assert [data for data, _, _ in got] == datagrams
        source = sender.getsockname()
        for data, at, addr in got:
            if stamps:
                assert at is not None and before - 0.01 < at <= after
            else:
                assert at is None
            if data and 127 < data[0] < 192:
                assert addr is None
            else:
                assert addr == source, (addr, source)
        assert receive(receiver.fileno(), 64, offset, before - 1.0) == ([], errno.EAGAIN)


def test_receive_many_reads_at_most_count_and_keeps_the_rest() -> None:
    receive = egress.compiled_receive()
    assert receive is not None
    receiver, sender = _receive_pair(socket.AF_INET, stamps=_kernel_stamps())
    with receiver, sender:
        _queue(receiver, sender, [bytes([0x80, i]) for i in range(5)])
        offset, now = _clock()
        first, _ = receive(receiver.fileno(), 2, offset, now - 1.0)
        rest, _ = receive(receiver.fileno(), 64, offset, now - 1.0)
        assert [d[1] for d, _, _ in first] == [0, 1]
        assert [d[1] for d, _, _ in rest] == [2, 3, 4]


def test_receive_many_trusts_no_stamp_from_before_the_burst_or_the_future() -> None:
    receive = egress.compiled_receive()
    assert receive is not None
    if not _kernel_stamps():
        pytest.skip("this kernel gives no receive stamps (qemu-user): nothing to distrust")
    receiver, sender = _receive_pair(socket.AF_INET, stamps=True)
    with receiver, sender:
        _queue(receiver, sender, [b"\x80\x01", b"\x80\x02"])
        offset, now = _clock()
        # a wall clock stepped back by an hour since: every stamp looks like the future
        future, _ = receive(receiver.fileno(), 1, offset - 3600.0, now - 1.0)
        # a burst said to start later than the datagram arrived: too old to trust
        old, _ = receive(receiver.fileno(), 1, offset, now + 60.0)
        assert [(d, at) for d, at, _ in future] == [(b"\x80\x01", None)]
        assert [(d, at) for d, at, _ in old] == [(b"\x80\x02", None)]


def test_receive_many_without_stamps_gives_none() -> None:
    receive = egress.compiled_receive()
    assert receive is not None
    receiver, sender = _receive_pair(socket.AF_INET, stamps=False)
    with receiver, sender:
        _queue(receiver, sender, [b"\x80\x01"])
        offset, now = _clock()
        assert receive(receiver.fileno(), 64, offset, now - 1.0) == ([(b"\x80\x01", None, None)], 0)


def test_receive_many_refuses_bad_arguments_and_reports_errors() -> None:
    receive = egress.compiled_receive()
    assert receive is not None
    offset, now = _clock()
    for count in (0, 65, -1):
        with pytest.raises(ValueError):
            receive(0, count, offset, now)
    with pytest.raises(TypeError):
        receive(0, 1, offset)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        receive(0, 1, "offset", now)  # type: ignore[arg-type]
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = closed.fileno()
    closed.close()
    assert receive(fd, 4, offset, now) == ([], errno.EBADF)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stream:
        stream.setblocking(False)
        got, err = receive(stream.fileno(), 4, offset, now)  # not connected: an error, no read
        assert got == [] and err != 0
