"""The pacer of a congested transport: rate, urgent first, order, bounded queue, drain."""

from __future__ import annotations

from typing import Any

import pytest

from edge_sfu.media.seam.pacing import MAX_QUEUE_S, MIN_BURST_BYTES, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Timers:
    """Stands in for the loop's ``call_later``: the test fires the timer itself."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, Any]] = []

    def call_later(self, delay: float, callback: Any) -> Any:
        handle = _Handle(self, delay, callback)
        self.pending.append((delay, handle))
        return handle

    def fire(self, clock: Clock) -> float:
        delay, handle = self.pending.pop(0)
        clock.now += delay
        handle.callback()
        return delay


class _Handle:
    def __init__(self, timers: Timers, delay: float, callback: Any) -> None:
        self.timers, self.delay, self.callback = timers, delay, callback

    def cancel(self) -> None:
        self.timers.pending = [p for p in self.timers.pending if p[1] is not self]


def _pacer(rate_bps: int) -> tuple[Pacer, list[tuple[float, bytes]], Clock, Timers]:
    clock, timers = Clock(), Timers()
    sent: list[tuple[float, bytes]] = []

    def send(header: bytes, payload: bytes, probe: bool) -> bool:
        sent.append((clock.now, header))
        return True

    pacer = Pacer(send, rate_bps, clock=clock, loop=timers)  # type: ignore[arg-type]
    return pacer, sent, clock, timers


def _run(pacer: Pacer, clock: Clock, timers: Timers, limit: int = 10_000) -> None:
    for _ in range(limit):
        if not timers.pending:
            return
        timers.fire(clock)
    raise AssertionError("the pacer never emptied its queue")


def test_a_burst_leaves_at_the_rate() -> None:
    pacer, sent, clock, timers = _pacer(400_000)
    start = clock.now
    for i in range(20):  # a 20 kB keyframe arriving at once
        pacer.push(b"h%02d" % i, bytes(997))
    assert len(sent) < 3  # only the burst allowance went at once
    _run(pacer, clock, timers)
    assert [h for _, h in sent] == [b"h%02d" % i for i in range(20)]
    elapsed = sent[-1][0] - start
    # 20 kB at 400 kbit/s is 0.4 s; the queue limit raises the rate to drain in MAX_QUEUE_S
    assert MAX_QUEUE_S * 0.8 <= elapsed <= 0.4 * 1.05
    assert pacer.queued_bytes == 0 and pacer.queued_packets == 0
    assert pacer.packets_paced == 20


def test_at_a_steady_rate_below_its_own_nothing_waits() -> None:
    pacer, sent, clock, timers = _pacer(1_000_000)
    for i in range(50):  # 1000-byte packets every 20 ms: 400 kbit/s
        pacer.push(b"h", bytes(999))
        assert len(sent) == i + 1, "a packet within the rate waited"
        clock.now += 0.02
    assert not timers.pending


def test_urgent_packets_overtake_the_queue_but_each_queue_keeps_its_order() -> None:
    pacer, sent, clock, timers = _pacer(100_000)
    for i in range(10):
        pacer.push(b"v%d" % i, bytes(1000))
    pacer.push(b"a0", bytes(100), urgent=True)
    pacer.push(b"a1", bytes(100), urgent=True)
    _run(pacer, clock, timers)
    order = [h for _, h in sent]
    assert order.index(b"a0") < order.index(b"v3")
    assert order.index(b"a0") < order.index(b"a1")
    videos = [h for h in order if h.startswith(b"v")]
    assert videos == [b"v%d" % i for i in range(10)]


def test_the_queue_never_holds_more_than_its_limit_in_time() -> None:
    pacer, sent, clock, timers = _pacer(200_000)
    start = clock.now
    for _ in range(200):  # 200 kB at once: 8 s at the rate
        pacer.push(b"h", bytes(999))
    _run(pacer, clock, timers)
    assert len(sent) == 200
    # drained within about the queue limit, not at 200 kbit/s
    assert sent[-1][0] - start <= MAX_QUEUE_S * 1.1


def test_a_lower_rate_applies_to_what_waits() -> None:
    pacer, sent, clock, timers = _pacer(1_000_000)
    for _ in range(10):
        pacer.push(b"h", bytes(999))
    pacer.set_rate(50_000)
    before = clock.now
    _run(pacer, clock, timers)
    # 10 kB is more than MAX_QUEUE_S at 50 kbit/s: the queue limit sets the pace
    assert sent[-1][0] - before >= 0.1


def test_drain_sends_everything_now_and_clear_drops_it() -> None:
    pacer, sent, _clock, timers = _pacer(100_000)
    for _ in range(10):
        pacer.push(b"h", bytes(999))
    pacer.drain()
    assert len(sent) == 10 and not timers.pending and pacer.queued_bytes == 0
    for _ in range(10):
        pacer.push(b"h", bytes(999))
    pacer.clear()
    assert len(sent) < 12 and not timers.pending and pacer.queued_packets == 0


def test_padding_queued_behind_media_stays_marked_as_a_probe() -> None:
    clock, timers = Clock(), Timers()
    sent: list[tuple[bytes, bool]] = []

    def send(header: bytes, payload: bytes, probe: bool) -> bool:
        sent.append((header, probe))
        return True

    pacer = Pacer(send, 100_000, clock=clock, loop=timers)  # type: ignore[arg-type]
    for i in range(5):
        pacer.push(b"v%d" % i, bytes(1000))
    pacer.push(b"pad", bytes(200), probe=True)
    _run(pacer, clock, timers)
    assert sent[-1] == (b"pad", True) and not any(p for _, p in sent[:-1])


def test_a_failing_send_does_not_stall_the_queue() -> None:
    clock, timers = Clock(), Timers()
    sent: list[bytes] = []

    def send(header: bytes, payload: bytes, probe: bool) -> bool:
        if header == b"bad":
            raise OSError("gone")
        sent.append(header)
        return True

    pacer = Pacer(send, 100_000, clock=clock, loop=timers)  # type: ignore[arg-type]
    pacer.push(b"bad", bytes(MIN_BURST_BYTES))
    pacer.push(b"good", bytes(10))
    _run(pacer, clock, timers)
    assert sent == [b"good"]


@pytest.mark.parametrize("rate", [0, -5])
def test_a_nonsense_rate_still_releases(rate: int) -> None:
    pacer, sent, clock, timers = _pacer(rate)
    pacer.push(b"h", bytes(100))
    pacer.push(b"h", bytes(100))
    _run(pacer, clock, timers)
    assert len(sent) == 2


def test_the_wait_a_packet_queued_now_would_have() -> None:
    pacer, _sent, clock, timers = _pacer(400_000)
    assert pacer.wait_s() == 0.0 and pacer.wait_s(urgent=True) == 0.0
    for i in range(5):  # 5 kB of media: 0.1 s at 400 kbit/s
        pacer.push(b"m%d" % i, bytes(998))
    queued = pacer.queued_bytes
    assert pacer.wait_s() == pytest.approx(queued * 8 / 400_000)
    assert pacer.wait_s(urgent=True) == 0.0  # nothing urgent waits: a retransmission goes next
    pacer.push(b"r0", bytes(998), urgent=True)
    pacer.push(b"r1", bytes(998), urgent=True)
    assert pacer.wait_s(urgent=True) == pytest.approx(2000 * 8 / 400_000)
    for i in range(60):  # far more than MAX_QUEUE_S holds: the wait is bounded by it
        pacer.push(b"b%d" % i, bytes(998))
    assert pacer.wait_s() <= MAX_QUEUE_S
    _run(pacer, clock, timers)
    assert pacer.wait_s() == 0.0 and pacer.wait_s(urgent=True) == 0.0
    assert pacer._urgent_bytes == 0
    pacer.push(b"r2", bytes(998), urgent=True)
    pacer.push(b"r3", bytes(998), urgent=True)
    pacer.clear()
    assert pacer.wait_s(urgent=True) == 0.0
