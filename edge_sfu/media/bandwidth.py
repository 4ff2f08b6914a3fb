"""One transport's bandwidth: what the SFU may send to a participant and what it receives.

``TransportBandwidth`` is the glue between a ``Transport`` and the estimators:

* uplink (the participant publishes): transport-cc feedback built from every arrival that
  carries a transport-wide sequence number (``on_rtp_arrival``), for the publisher's own
  send-side estimator; for video sent without transport-cc, a ``ReceiveSideEstimator`` per
  track whose estimate goes into the REMB (``remb_bitrate``), never above the publisher cap
  nor ``MediaSettings.publisher_max_bitrate``;
* downlink (the participant subscribes): the subscriber's RTCP seen raw
  (``on_rtcp``): transport-cc feedback into a ``SendSideEstimator`` (fed by ``on_sent``),
  REMB as a ceiling, receiver reports' loss into a loss-based estimate when there is no
  transport-cc feedback, kept within reach of what is sent (``sent_bytes``) and of what got
  through.

Malformed feedback is ignored with a debug log line: nothing here raises into the
forwarding path.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from edge_sfu.media.consumer import PADDING_BYTES, Consumer
from edge_sfu.media.estimator import (
    LOSS_FLOOR,
    LossBasedControl,
    ProbeRequest,
    RateWindow,
    ReceiveSideEstimator,
    SendSideEstimator,
    Usage,
)
from edge_sfu.media.packet import PACKET_OVERHEAD_BYTES, TRANSPORT_OVERHEAD_BYTES
from edge_sfu.media.settings import MediaSettings
from edge_sfu.media.twcc import (
    FMT_TRANSPORT_CC,
    FeedbackBuilder,
    MalformedFeedback,
    TransportFeedback,
    split_compound,
)

logger = logging.getLogger(__name__)

RTCP_RR: Final = 201
RTCP_SR: Final = 200
RTCP_RTPFB: Final = 205
RTCP_PSFB: Final = 206
PSFB_APP: Final = 15
#: Where a downlink estimate starts before feedback says more, and the least it says.
START_BPS: Final = 600_000
MIN_BPS: Final = 50_000
#: A change of an estimate by this fraction is worth an ``on_estimate``.
CHANGE: Final = 0.05
#: The span (seconds) over which the rate sent to a participant without transport-cc is
#: measured for its loss-based estimate: about two of its receiver reports.
SENT_SPAN_S: Final = 1.0
#: About the longest a receiver report's interval runs (aiortc sends one every 0.5 to
#: 1.5 s, Chromium about every second).
REPORT_INTERVAL_S: Final = 1.5
#: Padding during a probe goes out in bursts this often, at most this many packets each.
PROBE_TICK_S: Final = 0.02
PROBE_MAX_PACKETS_PER_TICK: Final = 50


@dataclass(frozen=True, slots=True)
class Estimate:
    """A transport's bandwidth as the SFU sees it (``Transport.estimate``).

    ``available_outgoing_bps``: what the SFU may send to the participant (downlink), None
    before any feedback; ``available_incoming_bps``: what the participant can send (its
    uplink), None before it sent a second of media. ``loss`` (0..1), ``rtt_s`` and
    ``jitter_s`` are the latest the subscriber's feedback and reports gave, or None.
    """

    available_outgoing_bps: int | None
    available_incoming_bps: int | None
    loss: float | None = None
    rtt_s: float | None = None
    jitter_s: float | None = None


def parse_remb(packet: bytes) -> int | None:
    """The bitrate of a REMB (RTCP PSFB FMT 15 "REMB"), or None if it is not a valid one."""
    if len(packet) < 20 or packet[12:16] != b"REMB":
        return None
    exp = packet[17] >> 2
    mantissa = ((packet[17] & 0x3) << 16) | (packet[18] << 8) | packet[19]
    return int(mantissa << exp)


#: How long a client's report of its own sender's estimate stays good (seconds): clients
#: report every few seconds, and a report that stops must not speak for a link forever.
SENDER_ESTIMATE_TTL_S: Final = 10.0


class TransportBandwidth:
    """The bandwidth state of one transport (see the module docstring)."""

    def __init__(self, settings: MediaSettings) -> None:
        self.settings = settings
        self.max_bps = settings.publisher_max_bitrate
        # downlink
        self.downlink = SendSideEstimator(START_BPS, MIN_BPS, 4 * settings.publisher_max_bitrate)
        self._loss_only = LossBasedControl(START_BPS, MIN_BPS, 4 * settings.publisher_max_bitrate)
        self._twcc_seen = False
        #: The bytes sent to the participant so far, on the wire (set by the transport):
        #: what keeps a loss-only estimate near the rate that caused the loss.
        self.sent_bytes: Callable[[], int] | None = None
        self._sent_samples: deque[tuple[float, int]] = deque()
        self._remb_bps: int | None = None
        self._downlink_known = False
        self._loss: float | None = None
        self.rtt_s: float | None = None
        self.jitter_s: float | None = None
        # uplink
        self.feedback = FeedbackBuilder()
        self._feedback_ssrc = random.getrandbits(32)
        self._uplink_ssrc = 0
        self._uplink_twcc = False
        self._incoming = RateWindow(1.0)
        self._incoming_now = 0.0
        self._track_estimators: list[ReceiveSideEstimator] = []
        self.publisher_cap: int | None = None
        self._sender_estimate: tuple[int, float] | None = None
        # what was last announced
        self._estimate: Estimate | None = None
        self.on_estimate: Callable[[], None] | None = None
        self.feedback_sent = 0
        self.feedback_received = 0
        self.malformed_feedback = 0

    # -- uplink ----------------------------------------------------------------------

    def on_rtp_arrival(
        self, transport_seq: int | None, arrival: float, size: int, ssrc: int
    ) -> None:
        """One packet from the participant (the receiving hot path: keep it cheap)."""
        self._incoming.add(arrival, size)
        self._incoming_now = arrival
        if transport_seq is not None:
            self._uplink_twcc = True
            self._uplink_ssrc = ssrc
            self.feedback.on_packet(transport_seq, int(arrival * 1_000_000))

    @property
    def uplink_twcc(self) -> bool:
        """Whether the participant's packets carry transport-wide sequence numbers."""
        return self._uplink_twcc

    def set_sender_estimate(self, bps: int | None, now: float) -> None:
        """What the participant's own sender estimates its uplink carries, as its client
        reports it (a browser's ``availableOutgoingBitrate``; None: it has none)."""
        self._sender_estimate = None if bps is None else (max(0, bps), now)

    def sender_estimate(self, now: float) -> int | None:
        """The sender's own estimate of its uplink, reported within
        ``SENDER_ESTIMATE_TTL_S``, or None. What arrives from a sender understates its uplink
        whenever the sender has less to send (a paused layer, a CPU-limited encoder): the
        sender's own figure does not."""
        reported = self._sender_estimate
        if reported is None or not 0 <= now - reported[1] <= SENDER_ESTIMATE_TTL_S:
            return None
        return reported[0]

    def track_estimator(self) -> ReceiveSideEstimator:
        """A receive-side estimator for one video track the participant sends (fed by the
        track from its RTP timestamps); its estimate goes into that track's REMB."""
        estimator = ReceiveSideEstimator(self.max_bps, MIN_BPS, self.max_bps)
        self._track_estimators.append(estimator)
        return estimator

    def drop_track_estimator(self, estimator: ReceiveSideEstimator) -> None:
        """The track ended."""
        if estimator in self._track_estimators:
            self._track_estimators.remove(estimator)

    def set_publisher_cap(self, bps: int | None) -> None:
        """The most the participant's senders may send in total (None: no cap but
        ``publisher_max_bitrate`` per track)."""
        self.publisher_cap = None if bps is None else max(0, int(bps))

    def remb_bitrate(self, estimator: ReceiveSideEstimator | None) -> int:
        """What one video track's REMB says.

        A participant that uses transport-cc (a browser) reads REMB as a ceiling on all it
        sends: the publisher cap, else ``publisher_max_bitrate``; its own estimator, fed
        by our feedback, does the rest. Without transport-cc (aiortc applies a REMB to the
        senders it names): the track's receive-side estimate, never more than its share of
        the cap, nor ``publisher_max_bitrate``.
        """
        bps = self.max_bps
        cap = self.publisher_cap
        if self._uplink_twcc:
            return bps if cap is None else min(bps, cap)
        if estimator is not None:
            bps = min(bps, estimator.estimate_bps)
        if cap is not None:
            bps = min(bps, cap // max(1, len(self._track_estimators)))
        return max(bps, 0)

    def feedback_packets(self) -> list[bytes]:
        """Transport-cc feedback for what arrived since the last call (serialized)."""
        if not self.feedback.pending:
            return []
        out = [fb.serialize() for fb in self.feedback.build(self._feedback_ssrc, self._uplink_ssrc)]
        self.feedback_sent += len(out)
        return out

    @property
    def received_bps(self) -> int | None:
        """What arrived from the participant over the last second (bit/s)."""
        rate = self._incoming.rate(self._incoming_now)
        return None if rate is None else int(rate)

    @property
    def incoming_bps(self) -> int | None:
        """The participant's uplink: the receive-side estimates where there are some
        (no transport-cc), else what arrives."""
        if self._track_estimators and not self._uplink_twcc:
            return sum(e.estimate_bps for e in self._track_estimators)
        return self.received_bps

    # -- downlink --------------------------------------------------------------------

    def on_sent(self, send_time: float, packets: list[tuple[int, int, bool]]) -> None:
        """Packets to the participant went out together, each with a transport-wide
        sequence number: (sequence, the RTP packet's size, probe?)."""
        # the estimate is of the link, as the allocation's costs are: SRTP, UDP and IP count
        self.downlink.on_sent_many(send_time, packets, TRANSPORT_OVERHEAD_BYTES)

    def on_rtcp(self, data: bytes, now: float) -> None:
        """A (compound) RTCP datagram from the participant, decrypted. Never raises."""
        try:
            for pt, fmt, packet in split_compound(data):
                if pt == RTCP_RTPFB and fmt == FMT_TRANSPORT_CC:
                    self._on_twcc(packet, now)
                elif pt == RTCP_PSFB and fmt == PSFB_APP:
                    bps = parse_remb(packet)
                    if bps is not None:
                        self._remb_bps = bps
                        self._downlink_known = True
                elif pt in (RTCP_RR, RTCP_SR):
                    self._on_report(packet, fmt, pt, now)
        except Exception:  # a bug here must not cost the participant its media
            logger.exception("subscriber feedback could not be used")

    def _on_twcc(self, packet: bytes, now: float) -> None:
        try:
            fb = TransportFeedback.parse(packet)
        except MalformedFeedback as exc:
            self.malformed_feedback += 1
            logger.debug("malformed transport-cc feedback ignored: %s", exc)
            return
        self.feedback_received += 1
        self._twcc_seen = True
        self._downlink_known = True
        self.downlink.on_feedback(
            ((seq, None if at is None else at / 1_000_000) for seq, at in fb.arrivals()), now
        )
        self._loss = self.downlink.loss

    def _on_report(self, packet: bytes, count: int, pt: int, now: float) -> None:
        # the report blocks' fraction lost; RTT and jitter come from the consumers
        start = 8 if pt == RTCP_RR else 28
        fractions: list[float] = []
        for i in range(count):
            pos = start + 24 * i
            if pos + 24 > len(packet):
                break
            fractions.append(packet[pos + 4] / 256)
        if not fractions:
            return
        loss = max(fractions)
        if not self._twcc_seen:
            self._loss = loss
            sent = self._sent_bps(now)
            control = self._loss_only
            # A report covers the packets since the previous one: the cut waits for one
            # about the rate it left, not the rate it cut. The cut starts from what was sent
            # when the estimate grew above it (as the send side's delay-based estimate
            # stays within 1.5 times what was acknowledged).
            control.update(loss, (self.rtt_s or 0.1) + REPORT_INTERVAL_S, now, sent)
            if sent is not None:
                # what got through did fit: one heavy loss from sending far too much must not
                # drive the estimate below it (it would take many seconds to climb back)
                control.bitrate = max(control.bitrate, LOSS_FLOOR * sent * (1.0 - loss))
            self._downlink_known = True

    def _sent_bps(self, now: float) -> float | None:
        """The rate sent to the participant over about the last ``SENT_SPAN_S``, None
        before that much is known (or without ``sent_bytes``)."""
        if self.sent_bytes is None:
            return None
        samples = self._sent_samples
        samples.append((now, self.sent_bytes()))
        while len(samples) > 2 and now - samples[1][0] >= SENT_SPAN_S:
            samples.popleft()
        then, before = samples[0]
        if now - then < SENT_SPAN_S / 2:
            return None
        return max(0, samples[-1][1] - before) * 8 / (now - then)

    async def run_probe(
        self, request: ProbeRequest, consumers: Callable[[], list[Consumer]]
    ) -> None:
        """Pad the participant's video streams (``consumers()``, between two frames) so
        that the total goes out at the probe's rate until it ends; bounded per tick.

        The padding stops as soon as the feedback shows a queue building (the delay-based
        detector overusing): the probe has failed by then, and what it would still send only
        overflows the link, taking the media's packets with it (behind a short link a probe
        sent to its end lost 40 % of a high-priority track's packets in its half second)."""

        # Counted as the link sees it: media with its headers, padding packets each with
        # theirs. Counting payload alone, and one padding packet more than the budget each
        # tick, sent about 1.5 times the probe's rate: a probe meant to overshoot a short
        # link a little flooded it, and the media's packets were lost with its padding.
        def wire() -> int:
            return sum(c.octets_sent + c.packets_sent * PACKET_OVERHEAD_BYTES for c in current)

        padding_wire = PADDING_BYTES + PACKET_OVERHEAD_BYTES
        current = consumers()
        sent = wire()
        then = time.monotonic()
        credit = 0.0  # bytes the probe's rate allows and nothing used yet
        downlink = self.downlink
        while then < request.until:
            await asyncio.sleep(PROBE_TICK_S)
            if downlink.usage is Usage.OVERUSING:
                downlink.end_probe(time.monotonic())
                return
            now = time.monotonic()
            current = consumers()
            total = wire()
            elapsed = now - then
            credit += request.bitrate_bps * elapsed / 8 - (total - sent)
            sent, then = total, now
            # what a tick inside a frame could not pad is padded with the next, not later;
            # nor is a stall made up for (the SFU's loop late by 300 ms padded 50 packets at
            # once, 14 kB into a link whose queue holds 5: the media behind it was lost),
            # as libwebrtc's prober drops a delayed probe rather than burst it
            credit = min(credit, request.bitrate_bps * 2 * PROBE_TICK_S / 8)
            count = min(int(credit // padding_wire), PROBE_MAX_PACKETS_PER_TICK)
            if count <= 0:
                continue
            for consumer in current:  # the first video stream between two frames
                video = consumer.ready and consumer.producer.kind == "video"
                if video and consumer.send_padding(count):
                    credit -= count * padding_wire
                    break

    def set_link_figures(self, rtt_s: float | None, jitter_s: float | None) -> None:
        """RTT and jitter from the consumers' view of the receiver reports."""
        self.rtt_s = rtt_s
        self.jitter_s = jitter_s
        if rtt_s is not None:
            self.downlink.set_rtt(rtt_s)
            for estimator in self._track_estimators:
                estimator.set_rtt(rtt_s)

    @property
    def outgoing_bps(self) -> int | None:
        """The downlink estimate, None before any feedback."""
        if not self._downlink_known:
            return None
        bps = self.downlink.estimate_bps if self._twcc_seen else int(self._loss_only.bitrate)
        if self._remb_bps is not None:
            bps = min(bps, self._remb_bps)
        return bps

    def tick(self, now: float) -> None:
        """Time passes (the transport's feedback loop, ten times a second)."""
        if self._twcc_seen:
            timeouts = self.downlink.feedback_timeouts
            self.downlink.on_tick(now)
            if self.downlink.feedback_timeouts != timeouts:
                self._loss = self.downlink.loss

    # -- the estimate ----------------------------------------------------------------

    @property
    def estimate(self) -> Estimate | None:
        """The latest estimate (``refresh`` keeps it current), None before anything known."""
        return self._estimate

    def refresh(self) -> bool:
        """Recompute the estimate; calls ``on_estimate`` and returns True on a meaningful
        change (a figure appears or moves by more than 5 %)."""
        outgoing, incoming = self.outgoing_bps, self.incoming_bps
        if outgoing is None and incoming is None:
            return False
        new = Estimate(outgoing, incoming, self._loss, self.rtt_s, self.jitter_s)
        old = self._estimate
        self._estimate = new
        changed = old is None or (
            _moved(old.available_outgoing_bps, outgoing)
            or _moved(old.available_incoming_bps, incoming)
        )
        if changed and self.on_estimate is not None:
            try:
                self.on_estimate()
            except Exception:
                logger.exception("on_estimate failed")
        return changed


def _moved(old: int | None, new: int | None) -> bool:
    if old is None or new is None:
        return old is not new
    return abs(new - old) > CHANGE * max(old, 1)
