"""Quality of experience as a page's own ``getStats()`` reports it, over a window.

Numbers come from Chromium's ``inbound-rtp`` (what a page decodes of each remote camera) and
``outbound-rtp`` (what it sends, per simulcast encoding), read twice; the differences over
the window are what a person watching would have seen.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Per remote participant's video: the receiver's own counters (the join page's client keeps
#: its peer connection in ``room._pc``).
INBOUND_VIDEO_JS = """
async () => {
  const room = window.edgeRoom;
  if (!room) return null;
  const out = {};
  for (const p of room.participants.values()) {
    for (const pub of p.tracks.values()) {
      if (pub.kind !== 'video' || !pub.track) continue;
      const receiver = room._pc.getReceivers().find((r) => r.track === pub.track.mediaStreamTrack);
      if (!receiver) continue;
      const s = [...(await receiver.getStats()).values()].find((x) => x.type === 'inbound-rtp');
      if (!s) continue;
      out[p.identity] = {framesDecoded: s.framesDecoded || 0, freezeCount: s.freezeCount || 0,
        totalFreezesDuration: s.totalFreezesDuration || 0, frameWidth: s.frameWidth || 0,
        frameHeight: s.frameHeight || 0, packetsLost: s.packetsLost || 0,
        packetsReceived: s.packetsReceived || 0, bytesReceived: s.bytesReceived || 0};
    }
  }
  return out;
}
"""

#: What a page sends of its camera: one entry per encoding (rid), with the sender's own
#: ``active`` flag and the encoder's target bitrate.
OUTBOUND_VIDEO_JS = """
async () => {
  const room = window.edgeRoom;
  if (!room) return null;
  const out = [];
  for (const sender of room._pc.getSenders()) {
    if (!sender.track || sender.track.kind !== 'video') continue;
    const active = {};
    for (const e of sender.getParameters().encodings || []) active[e.rid || ''] = e.active;
    for (const s of (await sender.getStats()).values()) {
      if (s.type !== 'outbound-rtp') continue;
      out.push({rid: s.rid || '', active: active[s.rid || ''] !== false,
        framesEncoded: s.framesEncoded || 0, bytesSent: s.bytesSent || 0,
        frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
        targetBitrate: s.targetBitrate || 0,
        qualityLimitationReason: s.qualityLimitationReason || ''});
    }
  }
  return out;
}
"""


@dataclass(frozen=True)
class Seen:
    """What one page saw of one remote camera over a window."""

    fps: float
    frozen_s: float
    freezes: int
    width: int
    height: int
    loss: float

    def __str__(self) -> str:
        return (
            f"{self.fps:.1f} fps, {self.frozen_s:.1f} s frozen in {self.freezes} freezes, "
            f"{self.width}x{self.height}, {self.loss:.0%} loss"
        )


def compare(before: dict[str, Any], after: dict[str, Any], seconds: float) -> dict[str, Seen]:
    """Per remote identity, what changed between two ``INBOUND_VIDEO_JS`` snapshots."""
    out: dict[str, Seen] = {}
    for identity, b in before.items():
        a = after.get(identity)
        if a is None:
            continue
        received = a["packetsReceived"] - b["packetsReceived"]
        lost = max(0, a["packetsLost"] - b["packetsLost"])
        out[identity] = Seen(
            fps=(a["framesDecoded"] - b["framesDecoded"]) / seconds,
            frozen_s=a["totalFreezesDuration"] - b["totalFreezesDuration"],
            freezes=a["freezeCount"] - b["freezeCount"],
            width=a["frameWidth"],
            height=a["frameHeight"],
            loss=lost / (received + lost) if received + lost else 0.0,
        )
    return out


async def watch(pages: dict[str, Any], seconds: float) -> dict[str, dict[str, Seen]]:
    """For each page (by its identity), what it saw of each remote camera over ``seconds``."""
    before = {name: await page.evaluate(INBOUND_VIDEO_JS) or {} for name, page in pages.items()}
    start = time.monotonic()
    await asyncio.sleep(seconds)
    after = {name: await page.evaluate(INBOUND_VIDEO_JS) or {} for name, page in pages.items()}
    elapsed = time.monotonic() - start
    return {name: compare(before[name], after[name], elapsed) for name in pages}


async def until_view(
    page: Any, other: str, check: Callable[[dict[str, Any]], bool], limit: float
) -> float | None:
    """Seconds until ``page``'s view of ``other`` (its ``INBOUND_VIDEO_JS`` entry) passes
    ``check``, polled every 0.2 s; None if it does not within ``limit`` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        view = (await page.evaluate(INBOUND_VIDEO_JS) or {}).get(other)
        if view is not None and check(view):
            return round(time.monotonic() - start, 2)
        await asyncio.sleep(0.2)
    return None


async def longest_freeze(page: Any, other: str, until: float) -> float | None:
    """The longest freeze of ``page``'s view of ``other`` from a second from now until
    ``until`` (monotonic): the freeze a switch just ended is counted by then. Each freeze
    adds its length to Chromium's total; polled every 0.25 s, they come one at a time. None
    if the view went away."""
    await asyncio.sleep(1)
    view = (await page.evaluate(INBOUND_VIDEO_JS) or {}).get(other)
    if view is None:
        return None
    longest = 0.0
    while time.monotonic() < until:
        await asyncio.sleep(0.25)
        now = (await page.evaluate(INBOUND_VIDEO_JS) or {}).get(other)
        if now is None:
            return None
        count = now["freezeCount"] - view["freezeCount"]
        if count:
            frozen = now["totalFreezesDuration"] - view["totalFreezesDuration"]
            longest = max(longest, frozen / count)
        view = now
    return round(longest, 2)


def report(seen: dict[str, dict[str, Seen]]) -> str:
    """One line per (viewer, remote) pair, for assertion messages and logs."""
    return "\n".join(
        f"  {viewer} sees {remote}: {s}"
        for viewer, remotes in seen.items()
        for remote, s in remotes.items()
    )


#: Chromium's own fake camera draws a simple animation that its 640x480 VP8 encoder carries
#: in a few hundred kbit/s, far below the top layer's budget: a short link would not notice
#: the top layer. The clip below has fine detail (as a sharp camera's), which costs the full
#: picture its budget and vanishes when the picture is halved, so the smaller layers stay
#: cheap and fluid, as with a real camera.
CAMERA_SIZE = (640, 480)
#: ffmpeg's ``testsrc2`` (moving shapes and text) with a one-pixel checkerboard that flips
#: every frame: a 2x2 average (the half-size layer) cancels it exactly.
_DETAIL = (
    "format=yuv420p,"
    "geq=lum='clip(lum(X\\,Y)+24*(2*mod(X+Y+N\\,2)-1)\\,0\\,255)'"
    ":cb='cb(X\\,Y)':cr='cr(X\\,Y)'"
)


#: A Chromium flag for the rooms whose bars count a browser camera's frames: when its CPU
#: adaptation steps down (``balanced``, as the join page asks), no frame rate below 15, as
#: Chromium's own table keeps at 640x480 and above; smaller pictures instead. Its default
#: (libwebrtc's ``BalancedDegradationSettings``) drops to 10 fps below 480x360 and 7 below
#: 320x240, a choice for one call on one machine; this host runs two or three browsers'
#: encoders on two cores, where a slower machine's CPU adaptation took both fast pages to
#: 480 pixels wide at 10-11 fps in both windows of the three-page room, and no subscriber
#: can decode 12 frames a second of a camera encoded at 11. Checked with a simulated
#: overuse (``WebRTC-ForceSimulatedOveruseIntervalMs``): by default 640 wide at 15 fps,
#: 480 at 15, 480 at 10; with this, 640 at 15, 480 at 15, 320 at 15. Still ``balanced``,
#: still adapting; the bars stay about what the unit forwards.
FRAME_RATE_FLOOR_FLAG = (
    "--force-fieldtrials=WebRTC-Video-BalancedDegradationSettings/"
    "pixels:76800|172800|307200,fps:15|15|15/"
)


def real_camera_flag(directory: Path, seconds: float = 1.0) -> str:
    """A Chromium flag that makes its fake camera play a clip with a sharp camera's detail
    (``_DETAIL``) at 640x480 and 30 fps, written as Y4M into ``directory`` (looped)."""
    clip = directory / "camera.y4m"
    if not clip.exists():
        width, height = CAMERA_SIZE
        source = f"testsrc2=size={width}x{height}:rate=30"
        subprocess.run(
            [
                *("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source),
                *("-vf", _DETAIL, "-t", str(seconds), str(clip)),
            ],
            check=True,
            timeout=120,
        )
    return f"--use-file-for-fake-video-capture={clip}"
