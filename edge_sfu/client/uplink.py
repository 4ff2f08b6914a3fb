"""What the Python client's own video encoding sends: the receiving unit's REMB, turned into
an encoder target and a picture size, as a browser's ``balanced`` degradation does.

The unit's REMB for a track is its estimate of what the uplink carries for it. aiortc
would hand it straight to its encoder, which cannot go below 250 kbit/s (VP8) and starts
over with a keyframe whenever the target moves by 10 %. Here the target follows a
decrease at once and an increase only once it held for ``RAISE_HOLD_S`` (a keyframe per
step, not per REMB), down to libwebrtc's 30 kbit/s floor; and the picture shrinks by
halves when the target is too small for its size while the encoder is held by it, so a
short uplink carries a smaller picture at its frame rate instead of a broken large one.
Audio is sent at ``AUDIO_BPS``, speech quality, instead of aiortc's 96 kbit/s.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from aiortc import MediaStreamTrack
from av import VideoFrame

from ..media import seam

#: The target before the first REMB (libwebrtc's start bitrate; aiortc's is 500 kbit/s).
START_BPS: Final = 300_000
#: Opus's rate for what the client sends (aiortc's own: 96 kbit/s, stereo music quality).
AUDIO_BPS: Final = 32_000
#: The share of the REMB the encoder is set to: room for its overshoot and keyframes.
HEADROOM: Final = 0.85
#: A lower target is taken when it is this much below the current one.
LOWER_BY: Final = 0.9
#: A higher target is taken when it is this much above the current one ...
RAISE_BY: Final = 1.2
#: ... and stayed so for this long.
RAISE_HOLD_S: Final = 2.0
#: Bits per pixel and frame a picture needs to look like one (VP8 in real time): 640x480
#: at 30 fps needs 300 kbit/s, 320x240 75 kbit/s, 160x120 19 kbit/s; libwebrtc's default
#: limits put 640x360 at 300 kbit/s.
BITS_PER_PIXEL: Final = 0.0325
#: A smaller picture grows again only when the target exceeds its need by this much.
GROW_MARGIN: Final = 1.3
#: The picture's sizes: the source's, then halves.
SCALES: Final = (1, 2, 4)
#: The picture shrinks only while its encoder sends at least this share of its target.
#: An easy picture (a slide, a still room) stays under its target at the encoder's best
#: quantizer and loses nothing to it; shrinking it would only send less, and a receive-side
#: estimate, which grows from what arrives, would then never let it grow back.
SATURATED: Final = 0.8
#: What the encoder sends is measured over this span (a keyframe is not a trend).
OUTPUT_WINDOW_S: Final = 2.0


class VideoBudget:
    """The encoder target and picture scale for a stream of REMB figures (no I/O)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: The encoder's target (bit/s).
        self.target_bps = START_BPS
        self._higher_since: float | None = None
        #: The divisor of the source's width and height now (1, 2 or 4).
        self.scale = 1
        self._sent: deque[tuple[float, int]] = deque()

    def hint(self, remb_bps: int) -> bool:
        """A REMB for the track; True when the target changed."""
        wanted = max(seam.MIN_VIDEO_BPS, int(max(0, remb_bps) * HEADROOM))
        now = self._clock()
        current = self.target_bps
        if wanted < LOWER_BY * current:
            self._higher_since = None
            self.target_bps = wanted
            return True
        if wanted <= RAISE_BY * current:
            self._higher_since = None
            return False
        if self._higher_since is None:
            self._higher_since = now
        if now - self._higher_since < RAISE_HOLD_S:
            return False
        self._higher_since = None
        self.target_bps = wanted
        return True

    def on_sent(self, octets: int) -> None:
        """The encoder's output so far (bytes, a running total)."""
        now, sent = self._clock(), self._sent
        if sent and octets < sent[-1][1]:
            sent.clear()  # another sender: its count started over
        sent.append((now, octets))
        while len(sent) > 2 and sent[1][0] <= now - OUTPUT_WINDOW_S:
            sent.popleft()

    @property
    def output_bps(self) -> int | None:
        """What the encoder sent over the last ``OUTPUT_WINDOW_S`` (bit/s), or None before
        a second of it."""
        sent = self._sent
        if len(sent) < 2 or sent[-1][0] - sent[0][0] < OUTPUT_WINDOW_S / 2:
            return None
        return int((sent[-1][1] - sent[0][1]) * 8 / (sent[-1][0] - sent[0][0]))

    def size(self, width: int, height: int, fps: float) -> tuple[int, int]:
        """The picture to encode from a ``width`` x ``height`` source at ``fps``: the largest
        of ``SCALES`` the target carries (a smaller one grows back with ``GROW_MARGIN``),
        smaller than now only while the encoder fills its target (``SATURATED``)."""
        fits = SCALES[-1]
        for scale in SCALES:
            need = (width // scale) * (height // scale) * max(fps, 1.0) * BITS_PER_PIXEL
            margin = GROW_MARGIN if scale < self.scale else 1.0
            if self.target_bps >= need * margin:
                fits = scale
                break
        if fits > self.scale:
            output = self.output_bps
            if output is None or output < SATURATED * self.target_bps:
                fits = self.scale
        self.scale = fits
        # even sizes: the encoders work on 2x2 chroma blocks
        return max(2, (width // fits) & ~1), max(2, (height // fits) & ~1)


class AdaptedVideoTrack(MediaStreamTrack):  # type: ignore[misc]
    """Another track's frames, at the size ``budget`` chooses; sets the encoder's target of
    the sender it is attached to (``attach``) as the budget changes."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, budget: VideoBudget | None = None) -> None:
        super().__init__()
        self.source = source
        self.budget = budget or VideoBudget()
        #: The aiortc sender this track is attached to, whose encoder it steers.
        self.sender: Any = None
        self._applied: tuple[Any, int] | None = None
        self._last_at: float | None = None
        self._fps = 30.0

    async def recv(self) -> VideoFrame:
        """The source's next frame, scaled to the budget."""
        frame = await self.source.recv()
        if not isinstance(frame, VideoFrame):
            return frame  # type: ignore[return-value]  # not ours to scale; aiortc packs it
        self._measure_rate(frame)
        target, sender = self.budget.target_bps, self.sender
        if sender is not None:
            self.budget.on_sent(seam.sent_octets(sender))
        # set before aiortc encodes this frame; False until its first frame made an encoder
        if (
            sender is not None
            and self._applied != (sender, target)
            and seam.set_video_bitrate(sender, target)
        ):
            self._applied = (sender, target)
        width, height = self.budget.size(frame.width, frame.height, self._fps)
        if (width, height) == (frame.width, frame.height):
            return frame
        scaled = frame.reformat(width=width, height=height, format="yuv420p")
        scaled.pts, scaled.time_base = frame.pts, frame.time_base
        return scaled

    def _measure_rate(self, frame: VideoFrame) -> None:
        # the source's frame rate from its timestamps, smoothed (a source may drop frames)
        if frame.pts is None or frame.time_base is None:
            return
        at = float(frame.pts * frame.time_base)
        if self._last_at is not None and 0 < at - self._last_at < 1:
            self._fps = 0.9 * self._fps + 0.1 * min(60.0, 1.0 / (at - self._last_at))
        self._last_at = at

    def stop(self) -> None:
        """Stop this track and its source (aiortc stops what it sends when it stops)."""
        super().stop()
        self.source.stop()
