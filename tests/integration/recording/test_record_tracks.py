"""A recorded room: the Python client (H.264 it encoded itself, and Opus through aiortc) and an
in-process kiosk (a two-layer camera and an Opus microphone). Each track's file is read back
with ffprobe and compared, access unit by access unit, with what the SFU forwarded."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from edge_sfu.client import connect
from edge_sfu.media import H264, OPUS, LayerSpec
from edge_sfu.recording.mkv import annexb_nals, read_blocks, split_length_prefixed
from edge_sfu.rooms import RoomSettings
from edge_sfu.rooms.model import RoomDefaults
from edge_sfu.store import RecordingFilter
from tests.support.media import (
    H264TestSource,
    OpusMicrophone,
    PatternVideoTrack,
    ToneAudioTrack,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(180)

PUBLISH_SECONDS = 5.0


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_streams", "-show_format",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(out)


class RecordingSource(H264TestSource):
    """The H.264 test source, remembering every access unit with its wall-clock push time."""

    def __init__(self, *args, **kwargs) -> None:
        self.pushed: list[tuple[bytes, float]] = []
        super().__init__(*args, **kwargs)

    def _push(self, data: bytes, keyframe: bool, now_us: int) -> None:
        self.pushed.append((data, time.time()))
        super()._push(data, keyframe, now_us)


async def test_recorded_room_files_match_forwarded_media(sfu, clients, tmp_path: Path) -> None:
    ctx = sfu.context
    settings = RoomSettings.from_defaults(RoomDefaults(record_participants_on_connect=True))
    room = await ctx.rooms.create_room("room1", settings)
    room_started = room.date_created.timestamp()

    # the Python client: pre-encoded H.264 and aiortc's Opus
    field = await connect(sfu.ws_url, sfu.token("field"))
    clients.append(field)
    started = asyncio.Event()
    field.on("recording_started", lambda: started.set())
    published_at: dict[str, float] = {}
    camera = await field.publish_encoded_video("camera")
    published_at["field/camera"] = time.monotonic()
    field_video = RecordingSource(camera, 320, 240, fps=15)
    camera_pub = next(p for p in field.local_tracks.values() if p.track is camera)
    mic = await field.publish_track(ToneAudioTrack(), "mic")
    published_at["field/mic"] = time.monotonic()

    # the kiosk: a camera in two layers (the top one is recorded) and a microphone
    kiosk = await sfu.signaling.connect_local("room1", "kiosk")
    kiosk_cam = await kiosk.publish(
        "camera", H264, layers=[LayerSpec("main", 480, 272), LayerSpec("lores", 240, 136)]
    )
    published_at["kiosk/camera"] = time.monotonic()
    kiosk_main = RecordingSource(kiosk_cam, 480, 272, fps=15, layer="main")
    kiosk_lores = H264TestSource(kiosk_cam, 240, 136, fps=15, layer="lores")
    kiosk_mic_producer = await kiosk.publish("microphone", OPUS)
    published_at["kiosk/microphone"] = time.monotonic()
    kiosk_mic = OpusMicrophone(kiosk_mic_producer)

    # what the SFU forwards, seen by a subscriber of its own
    router = sfu.signaling.routers[room.sid]
    forwarded: dict[str, list[bytes]] = {}
    tracks = {
        "field/camera": camera_pub.sid, "field/mic": mic.sid,
        "kiosk/camera": kiosk_cam.id, "kiosk/microphone": kiosk_mic_producer.id,
    }  # fmt: skip
    for sid in tracks.values():
        await wait_for(lambda sid=sid: sid in router.producers, what=f"producer {sid}")
        router.consume_local(
            router.producers[sid], lambda f, sid=sid: forwarded.setdefault(sid, []).append(f.data)
        )
    await asyncio.wait_for(started.wait(), 10)
    assert field.is_recording

    await asyncio.sleep(PUBLISH_SECONDS)
    stopped = asyncio.Event()
    field.on("recording_stopped", lambda: stopped.set())
    field.unpublish_track(camera_pub)
    field.unpublish_track(mic)
    await kiosk.unpublish(kiosk_cam)
    await kiosk.unpublish(kiosk_mic_producer)
    unpublished_at = time.monotonic()
    for source in (field_video, kiosk_main, kiosk_lores, kiosk_mic):
        await source.close()
    await asyncio.wait_for(stopped.wait(), 10)
    assert not field.is_recording

    recordings = {
        rec.source_sid: rec
        for rec in ctx.store.find_recordings(RecordingFilter(room_sid=room.sid), 50, 0)
    }
    assert set(recordings) == set(tracks.values())
    for label, sid in tracks.items():
        rec = recordings[sid]
        assert rec.status == "completed", label
        path = ctx.recordings.path(rec)
        info = ffprobe(path)
        (stream,) = info["streams"]
        audio = label.endswith(("mic", "microphone"))
        assert path.suffix == (".mka" if audio else ".mkv")
        assert stream["codec_name"] == ("opus" if audio else "h264"), label
        assert rec.codec == ("OPUS" if audio else "H264")
        published_for = unpublished_at - published_at[label]
        duration = float(info["format"]["duration"])
        assert abs(duration - published_for) <= 1.0, (label, duration, published_for)
        assert rec.duration is not None and abs(rec.duration - published_for) <= 1.0
        assert rec.size == path.stat().st_size
        # byte for byte what was forwarded (from the recording's first frame on)
        blocks = read_blocks(path)
        if audio:
            got = [b.data for b in blocks]
        else:
            got = [b"".join(split_length_prefixed(b.data)) for b in blocks]
            assert int(stream["width"]) == (320 if label.startswith("field") else 480)
        sent = forwarded[sid]
        if not audio:
            sent = [b"".join(annexb_nals(au)) for au in sent]
        # the recorder subscribed first: the test's own subscriber starts later in the stream
        start = got.index(sent[0])
        overlap = min(len(got) - start, len(sent))
        assert got[start : start + overlap] == sent[:overlap], label
        assert overlap >= (PUBLISH_SECONDS - 2) * (15 if not audio else 50), label

    # the encoder's own output, unchanged: the field camera's access units
    rec = recordings[camera_pub.sid]
    got = [split_length_prefixed(b.data) for b in read_blocks(ctx.recordings.path(rec))]
    encoded = [annexb_nals(au) for au, _ in field_video.pushed]
    start = encoded.index(got[0])
    assert got == encoded[start : start + len(got)]

    # the kiosk's audio and video line up: both on the room's clock, as pushed
    skews = []
    for sid, pushed in (
        (kiosk_cam.id, kiosk_main.pushed),
        (kiosk_mic_producer.id, kiosk_mic.pushed),
    ):
        wall = {(b"".join(annexb_nals(d)) if sid == kiosk_cam.id else d): t for d, t in pushed}
        blocks = read_blocks(ctx.recordings.path(recordings[sid]))
        deltas = []
        for block in blocks:
            data = block.data
            if sid == kiosk_cam.id:
                data = b"".join(split_length_prefixed(data))
            if data in wall:
                deltas.append(block.time_ms - (wall[data] - room_started) * 1000)
        skews.append(statistics.median(deltas))
    assert abs(skews[0] - skews[1]) <= 100, skews


async def test_vp8_from_the_python_client_is_recorded_as_sent(sfu, clients) -> None:
    ctx = sfu.context
    settings = RoomSettings.from_defaults(RoomDefaults(record_participants_on_connect=True))
    room = await ctx.rooms.create_room("room1", settings)
    field = await connect(sfu.ws_url, sfu.token("field"))
    clients.append(field)
    video = await field.publish_track(PatternVideoTrack(320, 240, fps=15), "camera", codec="VP8")
    router = sfu.signaling.routers[room.sid]
    await wait_for(lambda: video.sid in router.producers, what="the VP8 producer")
    assert router.producers[video.sid].codec.name == "VP8"
    forwarded: list[bytes] = []
    router.consume_local(router.producers[video.sid], lambda f: forwarded.append(f.data))
    await asyncio.sleep(3.0)
    field.unpublish_track(video)
    flt = RecordingFilter(room_sid=room.sid, status="completed")
    (rec,) = await wait_for(lambda: ctx.store.find_recordings(flt, 5, 0), what="the recording")
    assert (rec.codec, rec.container_format) == ("VP8", "mkv")
    path = ctx.recordings.path(rec)
    (stream,) = ffprobe(path)["streams"]
    assert stream["codec_name"] == "vp8" and (stream["width"], stream["height"]) == (320, 240)
    got = [b.data for b in read_blocks(path)]
    start = got.index(forwarded[0])
    overlap = min(len(got) - start, len(forwarded))
    assert overlap >= 20 and got[start : start + overlap] == forwarded[:overlap]


async def test_a_resumed_session_hears_whether_the_room_is_recorded(sfu, clients) -> None:
    settings = RoomSettings.from_defaults(RoomDefaults(record_participants_on_connect=True))
    await sfu.context.rooms.create_room("room1", settings)
    watcher = await connect(sfu.ws_url, sfu.token("watcher"))
    clients.append(watcher)
    started = watcher.expect("recording_started")
    kiosk = await sfu.signaling.connect_local("room1", "kiosk")
    camera = await kiosk.publish("camera", H264)
    source = H264TestSource(camera, 320, 240)
    heard: list[str] = []
    watcher.on("recording_started", lambda: heard.append("started"))
    watcher.on("recording_stopped", lambda: heard.append("stopped"))
    try:
        await asyncio.wait_for(started, 10)
        # the link drops and comes back while the room is still recorded: the resumed
        # session is told the state again, which changes nothing (no second event)
        again = watcher.expect("reconnected")
        await watcher._connection.ws.close()
        await asyncio.wait_for(again, 10)
        await asyncio.sleep(0.5)
        assert watcher.is_recording and heard == ["started"], heard
        # the link drops; meanwhile the recording stops; the resumed session is told
        back = watcher.expect("reconnected")
        stopped = watcher.expect("recording_stopped")
        await watcher._connection.ws.close()
        await kiosk.unpublish(camera)
        await asyncio.wait_for(back, 10)
        await asyncio.wait_for(stopped, 10)
        assert not watcher.is_recording and heard == ["started", "stopped"], heard
    finally:
        await source.close()
