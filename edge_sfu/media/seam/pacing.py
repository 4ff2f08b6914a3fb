"""A pacer for one congested transport: the SFU's queue instead of the network's.

Forwarding sends each packet the moment it arrives, so a subscriber's link sees whatever
bursts its publishers make: a keyframe of a layer just switched on, several streams' frames
at once, retransmissions on top. On a link that the allocation fills to its estimate, the
bottleneck's queue (a router's, or ``tbf``'s) takes those bursts and drops what does not
fit, the estimator reads the loss as congestion, the allocation steps down, and the next
step up brings the next keyframe: the oscillation a weak link shows. libwebrtc paces every
sender for this reason (``PacingController``); here only a transport whose estimate binds is
paced, so a good link keeps the plain path's latency and cost.

The pacer releases packets at a rate (the transport's estimate times a small factor) from
two queues: urgent first (audio, retransmissions), then the rest in arrival order, so one
stream's packets never overtake each other. A burst of ``BURST_S`` of the rate may leave at
once (a small frame is not split). No packet waits longer than about ``MAX_QUEUE_S``: when
the queue would hold it longer, the rate rises so that the oldest packet and everything
after it leave in time (libwebrtc does the same rather than drop). Transport-wide sequence
numbers are given as packets leave the pacer (the sender's ``send`` does it), so feedback
measures the link, not this queue.

Timing is the event loop's (``call_later``): about a millisecond, plenty for the few hundred
packets a second a congested link carries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: What may leave at once: this much time's worth of the rate (seconds).
BURST_S = 0.01
#: ... and at least this many bytes (one full-size packet), so a packet is never stuck.
MIN_BURST_BYTES = 1500
#: The most media the queue holds, in seconds at the rate; above it the rate rises.
MAX_QUEUE_S = 0.25
#: The shortest wait between two releases (seconds): below it the loop's timer is noise.
MIN_WAIT_S = 0.002

#: Sends one packet now (header, payload, probe?); False if it was dropped.
Send = Callable[[bytes, bytes, bool], bool]
_Packet = tuple[bytes, bytes, bool]


class Pacer:
    """Releases packets to ``send`` at ``rate_bps`` (see the module docstring).

    ``push`` queues a packet (and releases what the budget allows at once); ``set_rate``
    changes the rate; ``drain`` sends everything queued now (when pacing ends); ``clear``
    drops it (when the transport closes). ``clock`` and ``loop`` are replaceable for tests.
    """

    def __init__(
        self,
        send: Send,
        rate_bps: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._send = send
        self._clock = clock
        self._loop = loop
        self.rate_bps = max(1, int(rate_bps))
        self._urgent: deque[_Packet] = deque()
        self._normal: deque[_Packet] = deque()
        #: Bytes queued now.
        self.queued_bytes = 0
        self._urgent_bytes = 0  # ... of which urgent
        self._budget = max(MIN_BURST_BYTES, self.rate_bps * BURST_S / 8)  # starts full
        self._last = clock()
        self._timer: asyncio.TimerHandle | None = None
        #: Packets that went through the queue (released or dropped at ``clear``).
        self.packets_paced = 0
        #: The longest a packet waited so far (seconds), for the status page.
        self.max_wait_s = 0.0
        self._since: deque[float] = deque()  # when each queued packet came, per queue order
        self._urgent_since: deque[float] = deque()

    @property
    def queued_packets(self) -> int:
        """Packets queued now."""
        return len(self._urgent) + len(self._normal)

    def wait_s(self, urgent: bool = False) -> float:
        """How long a packet queued now would wait before it leaves (seconds): behind
        everything queued, or (``urgent``) behind the urgent packets only; at the rate the
        queue would be released at (``MAX_QUEUE_S`` at most, by the rule above)."""
        ahead = self._urgent_bytes if urgent else self.queued_bytes
        if not ahead:
            return 0.0
        return min(MAX_QUEUE_S, ahead * 8 / self._effective_rate(self._clock()))

    def set_rate(self, rate_bps: int) -> None:
        """Release at ``rate_bps`` from now on."""
        self._refill(self._clock())
        self.rate_bps = max(1, int(rate_bps))

    def push(
        self, header: bytes, payload: bytes, urgent: bool = False, probe: bool = False
    ) -> None:
        """Queue one packet; it leaves now if the budget allows and nothing waits before it.
        ``probe`` is passed on to ``send`` (padding queued behind media to keep its order)."""
        now = self._clock()
        size = len(header) + len(payload)
        if urgent:
            self._urgent.append((header, payload, probe))
            self._urgent_since.append(now)
            self._urgent_bytes += size
        else:
            self._normal.append((header, payload, probe))
            self._since.append(now)
        self.queued_bytes += size
        self._release(now)

    def drain(self) -> None:
        """Send everything queued, now (pacing ends)."""
        self._cancel_timer()
        now = self._clock()
        while self._urgent or self._normal:
            self._send_next(now)

    def clear(self) -> None:
        """Drop everything queued (the transport closes)."""
        self._cancel_timer()
        self.packets_paced += self.queued_packets
        self._urgent.clear()
        self._normal.clear()
        self._since.clear()
        self._urgent_since.clear()
        self.queued_bytes = 0
        self._urgent_bytes = 0

    # -- internals -------------------------------------------------------------------

    def _effective_rate(self, now: float) -> float:
        # fast enough that the oldest packet waiting leaves within MAX_QUEUE_S of its
        # coming, and everything queued with it
        heads = [q[0] for q in (self._urgent_since, self._since) if q]
        if not heads:
            return float(self.rate_bps)
        left = max(MIN_WAIT_S, MAX_QUEUE_S - (now - min(heads)))
        return max(float(self.rate_bps), self.queued_bytes * 8 / left)

    def _refill(self, now: float) -> None:
        rate = self._effective_rate(now)
        elapsed = max(0.0, now - self._last)
        self._last = now
        cap = max(MIN_BURST_BYTES, rate * BURST_S / 8)
        self._budget = min(cap, self._budget + rate * elapsed / 8)

    def _send_next(self, now: float) -> int:
        if self._urgent:
            header, payload, probe = self._urgent.popleft()
            since = self._urgent_since.popleft()
            size = len(header) + len(payload)
            self._urgent_bytes -= size
        else:
            header, payload, probe = self._normal.popleft()
            since = self._since.popleft()
            size = len(header) + len(payload)
        self.queued_bytes -= size
        self.packets_paced += 1
        self.max_wait_s = max(self.max_wait_s, now - since)
        try:
            self._send(header, payload, probe)
        except Exception:  # one packet's failure must not stall the queue
            logger.exception("sending a paced packet failed")
        return size

    def _release(self, now: float) -> None:
        self._refill(now)
        while (self._urgent or self._normal) and self._budget > 0:
            self._budget -= self._send_next(now)
        if (self._urgent or self._normal) and self._timer is None:
            # the budget is in debt by up to one packet: wait until it is paid back
            wait = max(MIN_WAIT_S, -self._budget * 8 / self._effective_rate(now))
            loop = self._loop
            if loop is None:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # no loop (a synchronous caller): send it all now
                    self.drain()
                    return
            self._timer = loop.call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._release(self._clock())

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
