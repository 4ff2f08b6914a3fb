"""A composition renders while a live 3-party room runs on the same unit: the room keeps its
frame rates. Prints the live call's CPU and the composition's speed against real time (the
figures in docs/performance.md)."""

from __future__ import annotations

import asyncio
import fractions
import json
import resource
import time
from pathlib import Path

import av
import pytest
from av.video.frame import PictureType

from edge_sfu.client import connect
from edge_sfu.recording.mkv import MkvWriter
from edge_sfu.rooms import RoomSettings
from edge_sfu.rooms.model import RoomDefaults, utcnow
from edge_sfu.rooms.recordings import Recording
from edge_sfu.sids import RECORDING, new_sid
from tests.support.media import H264TestSource, h264_encoder, receive_frames
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(300)

FPS = 15
RECORDED_SECONDS = 30
#: Moving test patterns: a fair load for the encoder (a flat colour would be too easy).
PATTERNS = ("testsrc2", "testsrc", "smptehdbars")


def write_recording(directory: Path, pattern: str) -> tuple[str, int]:
    """30 s of 640x360 H.264 of a test pattern, as a recorder writes it; (file name, size)."""
    name = f"{new_sid(RECORDING)}.mkv"
    writer = MkvWriter(directory / name, "H264")
    encoder = h264_encoder(640, 360, FPS, g=str(FPS * 2))
    source = av.open(f"{pattern}=size=640x360:rate={FPS}", format="lavfi")
    for n, frame in enumerate(source.decode(video=0)):
        if n == RECORDED_SECONDS * FPS:
            break
        frame = frame.reformat(format="yuv420p")
        frame.pict_type = PictureType.I if n == 0 else PictureType.NONE
        frame.pts, frame.time_base = n, fractions.Fraction(1, FPS)
        for packet in encoder.encode(frame):
            writer.add(bytes(packet), packet.is_keyframe, 1000 + n * 1000 // FPS)
    source.close()
    writer.finish()
    return name, writer.size


async def recorded_room(ctx) -> str:
    """A completed room with three 30 s video recordings."""
    room = await ctx.rooms.create_room("earlier", RoomSettings.from_defaults(RoomDefaults()))
    for i, pattern in enumerate(PATTERNS):
        name, size = await asyncio.to_thread(write_recording, ctx.recordings.directory, pattern)
        now = utcnow()
        ctx.store.save_recording(
            Recording(
                name[:34], room.sid, f"PA{i:032x}", f"MT{i:032x}", "camera", "video", "H264",
                "mkv", "completed", name, now, now, 1000, RECORDED_SECONDS, size,
            )
        )  # fmt: skip
    await ctx.rooms.complete_room(room.sid)
    return room.sid


async def frame_rate(track, seconds: float) -> float:
    start = time.monotonic()
    count = 0
    while time.monotonic() - start < seconds:
        await receive_frames(track, 1, timeout=5)
        count += 1
    return count / (time.monotonic() - start)


async def test_live_room_keeps_its_frame_rates_while_a_composition_renders(sfu, clients) -> None:
    ctx = sfu.context
    room_sid = await recorded_room(ctx)

    people = []
    received: dict[tuple[str, str], object] = {}
    for identity in ("a", "b", "c"):
        room = await connect(sfu.ws_url, sfu.token(identity))
        clients.append(room)
        room.on(
            "track_subscribed",
            lambda track, _pub, who, me=identity: received.__setitem__((me, who.identity), track),
        )
        camera = await room.publish_encoded_video("camera")
        people.append((room, H264TestSource(camera, 320, 240, fps=FPS)))
    try:
        await wait_for(lambda: len(received) == 6, timeout=30, what="6 subscriptions")
        for track in received.values():
            await receive_frames(track, 5, timeout=20)

        before = await asyncio.gather(*(frame_rate(t, 3.0) for t in received.values()))
        cpu0, wall0 = time.process_time(), time.monotonic()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        comp = ctx.compositions.create(
            ctx.store.get_room(room_sid),
            {"video_layout": {"g": _grid()}, "audio_sources": [], "trim": True},
            "mp4",
            "1280x720",
            None,
            "POST",
        )
        await wait_for(lambda: ctx.compositions.current == comp.sid, timeout=10)
        during = await asyncio.gather(*(frame_rate(t, 6.0) for t in received.values()))
        live_cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        await wait_for(
            lambda: ctx.store.get_composition(comp.sid).status in ("completed", "failed"),
            timeout=240,
        )
        made = ctx.store.get_composition(comp.sid)
        elapsed = time.monotonic() - wall0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        ffmpeg_cpu = (children.ru_utime + children.ru_stime) - (
            children0.ru_utime + children0.ru_stime
        )
        assert made.status == "completed", made.error
        print(
            json.dumps(
                {
                    "composition_seconds": made.duration,
                    "composition_wall_seconds": round(elapsed, 1),
                    "speed_vs_real_time": round(made.duration / elapsed, 2),
                    "ffmpeg_cpu_seconds": round(ffmpeg_cpu, 1),
                    "live_process_cpu_cores": round(live_cpu, 2),
                    "fps_before": [round(f, 1) for f in before],
                    "fps_during": [round(f, 1) for f in during],
                }
            )
        )
        # every subscriber keeps at least 90 % of the frame rate it had before
        for b, d in zip(before, during, strict=True):
            assert d >= 0.9 * min(b, FPS), (before, during)
    finally:
        for _, source in people:
            await source.close()


def _grid() -> dict:
    from edge_sfu.recording.layout import parse_layout

    return parse_layout(json.dumps({"g": {"video_sources": ["*"]}}), (1280, 720))["g"]
