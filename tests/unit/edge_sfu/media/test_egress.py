"""Batched sending on real sockets with real SRTP: what leaves is what was queued, in order."""

from __future__ import annotations

import os
import socket
import struct

import pylibsrtp
import pytest

from edge_sfu.media.seam import egress

KEY = bytes(range(30))


@pytest.fixture(autouse=True, params=["compiled", "python"])
def writer_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: writers that protect and send with the compiled helper
    (``send_batch`` plans the messages and calls ``sendmmsg``), and in Python."""
    mode: str = request.param
    if mode == "compiled" and not egress.fast_path_available():
        pytest.skip("the compiled helper is not built here")
    monkeypatch.setenv(egress.PURE_PYTHON_ENV, "1" if mode == "python" else "0")
    return mode


def _sessions() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    tx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    return tx, rx


def _rtp(seq: int, size: int, ssrc: int = 0x1234) -> tuple[bytes, bytes]:
    header = struct.pack("!BBHII", 0x80, 96, seq, seq * 3000, ssrc)
    return header, os.urandom(size - len(header))


def _frame() -> list[tuple[bytes, bytes]]:
    # a frame cut in equal parts and a short last one, an audio packet, then another frame
    sizes = [1200] * 7 + [700, 120] + [1100] * 3 + [1101]
    return [_rtp(i, size) for i, size in enumerate(sizes)]


def _receive(receiver: socket.socket, rx: pylibsrtp.Session, count: int) -> list[bytes]:
    return [rx.unprotect(receiver.recv(2048)) for _ in range(count)]


@pytest.mark.parametrize("pair", [socket.AF_INET, socket.AF_INET6], indirect=True)
def test_queued_packets_leave_protected_in_order_in_one_call(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch, writer_mode: str
) -> None:
    monkeypatch.delenv(egress.PLAIN_SEND_ENV, raising=False)
    sender, receiver = pair
    tx, rx = _sessions()
    writer = egress.BatchWriter.create(sender, receiver.getsockname(), tx)
    assert writer is not None
    packets = _frame()
    for header, payload in packets:
        assert writer.queue(header, payload, 0, -1, False)
    assert writer.pending == len(packets)
    assert writer.compiled is (writer_mode == "compiled")
    writer.flush()
    assert writer.pending == 0
    assert writer.syscalls == 1 and writer.packets_sent == len(packets)
    assert _receive(receiver, rx, len(packets)) == [h + p for h, p in packets]


def test_runs_of_one_size_become_one_message_each() -> None:
    writer = egress.BatchWriter.__new__(egress.BatchWriter)
    writer._gso = True
    lens = [1210, 1210, 1210, 700, 120, 1210, 1211, 1211]
    assert writer._messages(lens, 0) == [(0, 4), (4, 1), (5, 1), (6, 2)]
    assert writer._messages(lens, 5) == [(5, 1), (6, 2)]
    # no message beyond the kernel's segment limit
    many = [1000] * (egress.GSO_MAX_SEGMENTS + 3)
    assert writer._messages(many, 0) == [
        (0, egress.GSO_MAX_BYTES // 1000),
        (egress.GSO_MAX_BYTES // 1000, len(many) - egress.GSO_MAX_BYTES // 1000),
    ]
    writer._gso = False
    assert writer._messages(lens, 6) == [(6, 1), (7, 1)]


def test_without_gso_the_batch_still_leaves_in_one_call(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    sender, receiver = pair
    tx, rx = _sessions()
    writer = egress.BatchWriter.create(sender, receiver.getsockname(), tx)
    assert writer is not None
    writer._gso = False  # as after a kernel refused it
    packets = _frame()
    for header, payload in packets:
        writer.queue(header, payload, 0, -1, False)
    writer.flush()
    assert writer.syscalls == 1
    assert _receive(receiver, rx, len(packets)) == [h + p for h, p in packets]


def test_more_than_a_batch_flushes_on_its_own(pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair
    tx, rx = _sessions()
    writer = egress.BatchWriter.create(sender, receiver.getsockname(), tx)
    assert writer is not None
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    packets = [_rtp(i, 1000) for i in range(egress.BATCH_SLOTS + 5)]
    for header, payload in packets:
        assert writer.queue(header, payload, 0, -1, False)
    assert writer.pending == 5
    writer.flush()
    assert _receive(receiver, rx, len(packets)) == [h + p for h, p in packets]


def test_numbered_packets_are_reported_in_order_when_they_leave(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    sender, receiver = pair
    tx, _ = _sessions()
    writer = egress.BatchWriter.create(sender, receiver.getsockname(), tx)
    assert writer is not None
    reported: list[tuple[float, list[tuple[int, int, bool]]]] = []
    writer.set_sent_handler(lambda at, packets: reported.append((at, list(packets))))
    for seq, (header, payload) in enumerate(_frame()[:4]):
        writer.queue(header, payload, 5, 100 + seq, seq == 3)
    writer.queue(*_rtp(9, 300), 0, -1, False)  # not numbered: not reported
    assert reported == []
    writer.flush()
    # one report for the batch, with the time it actually left
    assert len(reported) == 1
    assert reported[0][1] == [
        (100, 1208, False),  # the extension's 8 bytes included
        (101, 1208, False),
        (102, 1208, False),
        (103, 1208, True),
    ]


def test_the_fallback_is_forced_by_the_environment(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, receiver = pair
    tx, _ = _sessions()
    monkeypatch.setenv(egress.PLAIN_SEND_ENV, "1")
    assert egress.BatchWriter.create(sender, receiver.getsockname(), tx) is None
    monkeypatch.setenv(egress.PLAIN_SEND_ENV, "0")
    assert egress.BatchWriter.create(sender, receiver.getsockname(), tx) is not None


def _writer(
    pair: tuple[socket.socket, socket.socket],
) -> tuple[egress.BatchWriter, socket.socket, pylibsrtp.Session]:
    """A writer from the pair's sender to its receiver, the receiver and its SRTP session."""
    sender, receiver = pair
    tx, rx = _sessions()
    writer = egress.BatchWriter.create(sender, receiver.getsockname(), tx)
    assert writer is not None
    return writer, receiver, rx


async def test_queued_packets_leave_by_the_next_loop_iteration(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    import asyncio

    writer, receiver, rx = _writer(pair)
    header, payload = _rtp(1, 500)
    writer.queue(header, payload, 0, -1, False)
    assert writer.pending == 1
    await asyncio.sleep(0)
    assert writer.pending == 0
    assert _receive(receiver, rx, 1) == [header + payload]


async def test_within_a_burst_read_packets_wait_for_its_end_and_after_it_for_the_loop(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    # The ingress opens a burst read (``begin_burst``) and ends it with ``flush_all``: what
    # the burst queues leaves then and no flush is scheduled beside it (a loop wake-up
    # for nothing); once it ended, packets queued outside a burst leave by the next loop
    # iteration again.
    import asyncio

    writer, receiver, rx = _writer(pair)
    inside = _rtp(1, 500)
    egress.begin_burst()
    try:
        writer.queue(*inside, 0, -1, False)
        for _ in range(3):
            await asyncio.sleep(0)
        assert writer.pending == 1  # nothing scheduled: the burst's end sends it
    finally:
        egress.flush_all()
    assert writer.pending == 0
    assert _receive(receiver, rx, 1) == [b"".join(inside)]
    outside = _rtp(2, 500)
    writer.queue(*outside, 0, -1, False)
    await asyncio.sleep(0)
    assert writer.pending == 0
    assert _receive(receiver, rx, 1) == [b"".join(outside)]


async def test_bookkeeping_put_off_in_a_burst_runs_after_its_datagrams_left(
    pair: tuple[socket.socket, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    # A received packet's bookkeeping (the estimators' arrival records) waits for the end of
    # the burst read, in order, after every queued datagram has left; one that raises is
    # logged and the rest still run. Outside a burst it runs at once.
    import logging

    writer, receiver, rx = _writer(pair)
    done: list[tuple[str, int]] = []

    def record(name: str, pending: int) -> None:
        done.append((name, pending))

    def fail() -> None:
        raise ValueError("bookkeeping broke")

    header, payload = _rtp(1, 500)
    with caplog.at_level(logging.ERROR):
        egress.begin_burst()
        try:
            egress.after_sends(lambda: record("first", writer.pending))
            writer.queue(header, payload, 0, -1, False)
            egress.after_sends(fail)
            egress.after_sends(lambda: record("second", writer.pending))
            assert done == []  # put off while the burst is read
        finally:
            egress.flush_all()
        assert done == [("first", 0), ("second", 0)]  # after the send, in order
        assert "bookkeeping broke" in caplog.text
        assert _receive(receiver, rx, 1) == [header + payload]
        egress.after_sends(lambda: record("outside", writer.pending))
        assert done[-1] == ("outside", 0)  # no burst: at once
        egress.after_sends(fail)  # and logged, not raised, there too
    failures = [
        r for r in caplog.records if r.exc_info and "bookkeeping broke" in str(r.exc_info[1])
    ]
    assert len(failures) == 2


def test_a_closed_socket_drops_the_batch_and_marks_the_writer_dead(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    sender, receiver = pair
    tx, _ = _sessions()
    writer = egress.BatchWriter.create(sender, receiver.getsockname(), tx)
    assert writer is not None
    for header, payload in _frame()[:3]:
        writer.queue(header, payload, 0, -1, False)
    fd = sender.fileno()
    sender.close()
    # the number is free again: the next socket gets it (POSIX: the lowest free), and the
    # batch must not leave through it
    other = socket.socket(sender.family, socket.SOCK_DGRAM)
    try:
        assert other.fileno() == fd
        writer.flush()
        assert writer.dead
        assert writer.packets_sent == 0 and writer.packets_dropped == 3
        receiver.settimeout(0.3)
        with pytest.raises(TimeoutError):
            receiver.recv(2048)
    finally:
        other.close()


def test_the_outbox_sends_every_batch_before_any_bookkeeping(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    # Two subscribers' writers with sent handlers; when the first handler runs, the second
    # writer's datagrams have already left (the last subscriber does not wait for the
    # estimators). A writer that filled up (flushed on its own, added again) is in the
    # outbox twice: nothing leaves twice, every numbered packet is reported once.
    import select

    sender, receiver = pair
    tx, rx = _sessions()
    other = socket.socket(sender.family, socket.SOCK_DGRAM)
    other.bind((receiver.getsockname()[0], 0))
    other.settimeout(2)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    try:
        tx2, rx2 = _sessions()
        first = egress.BatchWriter.create(sender, receiver.getsockname(), tx)
        second = egress.BatchWriter.create(sender, other.getsockname(), tx2)
        assert first is not None and second is not None
        waiting: list[bool] = []
        reported: list[list[int]] = []

        def on_first(at: float, packets: list[tuple[int, int, bool]]) -> None:
            waiting.append(select.select([other], [], [], 0)[0] == [other])
            reported.append([seq for seq, _, _ in packets])

        first.set_sent_handler(on_first)
        second.set_sent_handler(lambda at, packets: reported.append([p[0] for p in packets]))
        count = egress.BATCH_SLOTS + 3
        packets = [_rtp(i, 600) for i in range(count)]
        for seq, (header, payload) in enumerate(packets):
            assert first.queue(header, payload, 5, seq, False)
        assert first.pending == 3  # a batch left on its own
        header, payload = _rtp(7, 600, ssrc=0x99)
        assert second.queue(header, payload, 5, 1000, False)
        egress.flush_all()
        assert waiting == [False, True]  # on its own: nothing else to send; then: sent first
        assert reported == [
            list(range(egress.BATCH_SLOTS)),
            list(range(egress.BATCH_SLOTS, count)),
            [1000],
        ]
        assert first.pending == 0 and second.pending == 0
        assert first.packets_sent == count and second.packets_sent == 1
        got = [rx.unprotect(receiver.recv(2048))[:12] for _ in range(count)]
        assert [struct.unpack("!H", h[2:4])[0] for h in got] == list(range(count))
        receiver.settimeout(0.2)
        with pytest.raises(TimeoutError):
            receiver.recv(2048)  # nothing twice
        assert rx2.unprotect(other.recv(2048))[8:12] == struct.pack("!I", 0x99)
    finally:
        other.close()
