"""Quality of experience as a page's own ``getStats()`` reports it, over a window.

Numbers come from Chromium's ``inbound-rtp`` (what a page decodes of each remote camera) and
``outbound-rtp`` (what it sends, per simulcast encoding), read twice; the differences over
the window are what a person watching would have seen.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
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
        targetBitrate: s.targetBitrate || 0});
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


def report(seen: dict[str, dict[str, Seen]]) -> str:
    """One line per (viewer, remote) pair, for assertion messages and logs."""
    return "\n".join(
        f"  {viewer} sees {remote}: {s}"
        for viewer, remotes in seen.items()
        for remote, s in remotes.items()
    )
