"""Network quality levels (0 to 5) with Twilio's meaning: how well a participant's link
carries what the participant asks of it.

Pure arithmetic on figures the media plane already keeps; the signaling layer samples them
every few seconds (``LinkSample``) and announces levels. A direction (send: what the
participant publishes; receive: what it subscribes to) scores each figure on its own and
takes the worst: the bandwidth it gets against the bandwidth it wants, loss, round-trip
time and jitter. The participant's level is the worse of its two directions; a direction
it does not use scores 5, so a participant that neither publishes nor subscribes is 5.
Level 0 is kept for a link that is down (connecting, reconnecting, failed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

#: Verbosity levels, as twilio-video.js's ``NetworkQualityVerbosity`` (the protocol's
#: names ``none``, ``minimal``, ``moderate``, ``detailed``).
VERBOSITY_NONE: Final = 0
VERBOSITY_MINIMAL: Final = 1
VERBOSITY_MODERATE: Final = 2
VERBOSITY_DETAILED: Final = 3

#: What a published track wants of the uplink when nothing better is known (bit/s): Opus
#: voice, and a camera at a conversational size and frame rate (a publisher estimating its
#: own uplink sends less on a poor link; on a good one a still picture may need no more).
#: The most a track is judged against: less where the SFU asks less of it (``wanted_bps``).
WANTED_BPS: Final = {"audio": 32_000, "video": 400_000}

#: Thresholds per figure, best first: a figure at or better than the n-th threshold scores
#: 5 - n; worse than every threshold scores 1.
#: The share of the wanted bit rate the link offers.
BANDWIDTH_SHARE: Final = (0.7, 0.5, 0.35, 0.2)
LOSS: Final = (0.02, 0.05, 0.1, 0.2)
RTT_S: Final = (0.3, 0.5, 0.8, 1.5)
#: Receiver-reported jitter of video counts each frame's burst of packets (sent together,
#: one timestamp), so a healthy link reads 20 to 50 ms on video: only more is a sign.
JITTER_S: Final = (0.06, 0.1, 0.15, 0.25)


@dataclass(frozen=True)
class LinkSample:
    """One direction of a participant's link over the last few seconds.

    ``wanted_bps``: what the participant asks of it (0: the direction is unused);
    ``actual_bps``: what went through; ``available_bps``: the estimate of what could (the
    uplink's estimate is what arrives when the publisher estimates it itself); ``loss``
    0..1; None where not known yet (a figure not known does not lower the level).
    """

    wanted_bps: int
    actual_bps: int | None = None
    available_bps: int | None = None
    loss: float | None = None
    rtt_s: float | None = None
    jitter_s: float | None = None


@dataclass(frozen=True)
class LinkLevels:
    """The level of one direction and of each of its figures (for detailed stats)."""

    level: int
    bandwidth: int
    loss: int
    latency: int


def wanted_bps(kind: str, asked_bps: int | None = None) -> int:
    """What one published track of ``kind`` wants of the uplink: ``WANTED_BPS``, or what
    the SFU asks of it where that is less (``asked_bps``: the bitrates of the layers its
    subscribers take, the publisher's cap; None: nothing is held back). A publisher whose
    subscribers switched its video off or render it small is not poor for sending less."""
    default = WANTED_BPS.get(kind, 0)
    return default if asked_bps is None else max(0, min(default, asked_bps))


def link_jitter(figures: Iterable[tuple[str, float | None]]) -> float | None:
    """A link's jitter from its streams' (kind, receiver-reported jitter in seconds): the
    worst audio stream's where one reports, else the worst video stream's; None if none.

    RFC 3550's interarrival jitter measures a link on an evenly paced stream, which audio
    is (a packet every 20 ms). Video's also counts how each frame's burst of packets was
    spread on its way (by its sender's pacing, by a busy forwarder or a busy receiver's
    late reads): on loopback, a page whose browser shared a busy host read 60-70 ms of
    video jitter, a poor link's figure, with its audio's well under that."""
    audio: list[float] = []
    video: list[float] = []
    for kind, jitter in figures:
        if jitter is not None and jitter >= 0:
            (audio if kind == "audio" else video).append(jitter)
    chosen = audio or video
    return max(chosen) if chosen else None


def _score(value: float, thresholds: tuple[float, ...], higher_is_better: bool) -> int:
    for n, limit in enumerate(thresholds):
        if (value >= limit) if higher_is_better else (value <= limit):
            return 5 - n
    return 1


def link_levels(sample: LinkSample) -> LinkLevels:
    """Score one direction. Figures out of range (negative, NaN) count as unknown."""
    if sample.wanted_bps <= 0:
        return LinkLevels(5, 5, 5, 5)
    bandwidth = 5
    available = sample.available_bps
    if available is not None and available >= 0:
        bandwidth = _score(available / sample.wanted_bps, BANDWIDTH_SHARE, True)
    loss = 5
    if sample.loss is not None and 0 <= sample.loss <= 1:
        loss = _score(sample.loss, LOSS, False)
    latency = 5
    if sample.rtt_s is not None and sample.rtt_s >= 0:
        latency = _score(sample.rtt_s, RTT_S, False)
    if sample.jitter_s is not None and sample.jitter_s >= 0:
        latency = min(latency, _score(sample.jitter_s, JITTER_S, False))
    return LinkLevels(min(bandwidth, loss, latency), bandwidth, loss, latency)


@dataclass(frozen=True)
class NetworkQuality:
    """A participant's level, its directions', and the figures behind them."""

    level: int
    send: LinkLevels
    recv: LinkLevels
    send_sample: LinkSample
    recv_sample: LinkSample
    #: Per kind ("audio", "video"): (send level, receive level) for that kind's share.
    kinds: dict[str, tuple[int, int]]

    def report(self, verbosity: int) -> dict[str, object] | None:
        """What a client asking at ``verbosity`` is told: None for ``none``; the level for
        ``minimal``; plus send and receive levels for ``moderate``; plus per-kind levels
        and the figures for ``detailed`` (see docs/signaling.md)."""
        if verbosity <= VERBOSITY_NONE:
            return None
        out: dict[str, object] = {"level": self.level}
        if verbosity >= VERBOSITY_MODERATE:
            out["send"] = self.send.level
            out["recv"] = self.recv.level
        if verbosity >= VERBOSITY_DETAILED:
            out["audio"] = {"send": self.kinds["audio"][0], "recv": self.kinds["audio"][1]}
            out["video"] = {"send": self.kinds["video"][0], "recv": self.kinds["video"][1]}
            out["send_stats"] = _stats(self.send, self.send_sample)
            out["recv_stats"] = _stats(self.recv, self.recv_sample)
        return out


def _stats(levels: LinkLevels, sample: LinkSample) -> dict[str, object]:
    return {
        "bandwidth": {
            "wanted": sample.wanted_bps,
            "actual": sample.actual_bps,
            "available": sample.available_bps,
            "level": levels.bandwidth,
        },
        "fraction_lost": {"value": sample.loss, "level": levels.loss},
        "latency": {"rtt": sample.rtt_s, "jitter": sample.jitter_s, "level": levels.latency},
    }


def network_quality(
    send: dict[str, LinkSample], recv: dict[str, LinkSample], *, connected: bool = True
) -> NetworkQuality:
    """The level of a participant from its per-kind samples (kind -> sample; a kind it
    does not send or receive may be missing). ``connected`` False gives level 0."""
    send_all = _merge(send)
    recv_all = _merge(recv)
    send_levels = link_levels(send_all)
    recv_levels = link_levels(recv_all)
    kinds = {
        kind: (
            link_levels(send.get(kind, LinkSample(0))).level,
            link_levels(recv.get(kind, LinkSample(0))).level,
        )
        for kind in ("audio", "video")
    }
    level = min(send_levels.level, recv_levels.level) if connected else 0
    return NetworkQuality(level, send_levels, recv_levels, send_all, recv_all, kinds)


def _merge(samples: dict[str, LinkSample]) -> LinkSample:
    # One direction as a whole: wants add up; the link figures are shared by the kinds.
    if not samples:
        return LinkSample(0)
    wanted = sum(s.wanted_bps for s in samples.values())
    first = next(iter(samples.values()))
    actual = [s.actual_bps for s in samples.values() if s.actual_bps is not None]
    losses = [s.loss for s in samples.values() if s.loss is not None]
    return LinkSample(
        wanted,
        sum(actual) if actual else None,
        first.available_bps,
        max(losses) if losses else None,
        first.rtt_s,
        first.jitter_s,
    )
