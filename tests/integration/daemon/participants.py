"""Python participants in a real daemon's room: publish a looped H.264 clip, count what arrives.

The clip is encoded once (libx264, tiny) and pushed again and again, so many participants
cost the machine almost nothing but the forwarding under test. A keyframe request restarts
the clip at its first (IDR) frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from av.video.frame import PictureType

from edge_sfu.client import EncodedVideoTrack, RemoteDataTrack, Room, connect
from edge_sfu.identity import load_or_create_identity
from edge_sfu.tokens import mint_access_token
from tests.support.media import h264_encoder
from tests.support.waiting import wait_for

FPS = 10


Clip = list[tuple[bytes, bool]]


def encoded_clip(width: int = 160, height: int = 120, frames: int = 20) -> Clip:
    """``frames`` H.264 access units (with their keyframe flag) of a test pattern; the first
    is an IDR."""
    source = av.open(f"testsrc2=size={width}x{height}:rate={FPS}", format="lavfi")
    codec = h264_encoder(width, height, FPS, g=str(FPS), keyint_min=str(FPS))
    out: Clip = []
    try:
        for i, frame in enumerate(source.decode(video=0)):
            if i == frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pict_type = PictureType.I if i == 0 else PictureType.NONE
            frame.pts = i
            out += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(frame)]
        out += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(None)]
    finally:
        source.close()
    return out[:frames]


def token(data_dir: Path, identity: str, room: str, ttl: int = 3600) -> str:
    """An access token signed with the daemon's own key (read from its data directory)."""
    unit = load_or_create_identity(data_dir)
    return mint_access_token(unit.signing_key, unit.account_sid, identity, room=room, ttl=ttl)


@dataclass
class Participant:
    """One joined client: publishes the clip, drains and counts every video it receives."""

    identity: str
    room: Room
    camera: EncodedVideoTrack
    clip: Clip
    #: Video frames received, by the sender's identity.
    frames_from: Counter[str] = field(default_factory=Counter)
    #: Data-track messages received, by the sender's identity.
    messages_from: Counter[str] = field(default_factory=Counter)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @classmethod
    async def join(
        cls, ws_url: str, data_dir: Path, identity: str, room: str, clip: Clip
    ) -> Participant:
        client = await connect(ws_url, token(data_dir, identity, room))
        camera = await client.publish_encoded_video("camera")
        me = cls(identity, client, camera, clip)
        client.on("track_subscribed", me._subscribed)
        # Tracks of participants already in the room were subscribed during connect.
        for who in client.participants.values():
            for pub in who.tracks.values():
                if pub.track is not None:
                    me._subscribed(pub.track, pub, who)
        me._spawn(me._push())
        return me

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _subscribed(self, track: Any, _pub: Any, who: Any) -> None:
        if isinstance(track, RemoteDataTrack):
            sender = who.identity
            track.on("message", lambda _m: self.messages_from.update([sender]))
        elif getattr(track, "kind", "") == "video":
            self._spawn(self._drain(track, who.identity))

    async def packets_received(self) -> int:
        """RTP packets received over this participant's connection (aiortc's inbound stats)."""
        media = self.room.media
        if media is None:
            return 0
        report = await media.pc.getStats()
        return sum(
            int(getattr(s, "packetsReceived", 0))
            for s in report.values()
            if getattr(s, "type", "") == "inbound-rtp"
        )

    async def _drain(self, track: Any, sender: str) -> None:
        with contextlib.suppress(Exception):
            while True:
                await track.recv()
                self.frames_from[sender] += 1

    async def _push(self) -> None:
        restart = [True]
        self.camera.on_keyframe_request = lambda: restart.__setitem__(0, True)
        i, start, n = 0, time.monotonic(), 0
        while True:
            if restart[0]:
                i, restart[0] = 0, False
            data, keyframe = self.clip[i]
            self.camera.push(data, keyframe, time.monotonic_ns() // 1000)
            i = (i + 1) % len(self.clip)
            n += 1
            await asyncio.sleep(max(0.0, start + n / FPS - time.monotonic()))

    async def wait_for_media(self, senders: list[str], frames: int, timeout: float) -> None:
        """Until at least ``frames`` video frames arrived from each of ``senders``."""
        await wait_for(
            lambda: dict(self.frames_from),
            lambda got: all(got.get(s, 0) >= frames for s in senders),
            timeout,
            f"{self.identity}: {frames} frames from each of {senders}",
        )

    async def close(self) -> None:
        """Stop publishing and leave (quietly, if the daemon is already gone)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.room.disconnect(), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.room.close(), 5)
